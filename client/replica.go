package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/graft-cluster/graft/client/prefetch"
	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/volume"
)

// Errors returned by the replica (Runtime, Volume, Reader, Writer).
var (
	// ErrConcurrentWrite means a Writer's base snapshot is no longer the
	// volume's latest local snapshot (another commit, pull or reset won).
	ErrConcurrentWrite = errors.New("client: concurrent write")
	// ErrRejected means the cluster rejected a push because its base was
	// stale; the volume is StatusRejectedCommit (or StatusConflict) until
	// Reset, Replay or Fork.
	ErrRejected = errors.New("client: push rejected")
	// ErrDiverged means a pull found the remote head moved while the
	// volume has local commits not pushed; the volume is StatusConflict.
	ErrDiverged = errors.New("client: local commits diverge from the remote head")
	// ErrRemoteLSNGone means a pending page cannot be fetched at its
	// snapshot's remote LSN: the cluster no longer serves that LSN (below
	// its retention horizon). Pull and read a newer snapshot.
	ErrRemoteLSNGone = errors.New("client: the snapshot's remote LSN is no longer readable on the cluster; Pull and read a newer snapshot")
	// ErrClosed means the Runtime was closed.
	ErrClosed = errors.New("client: runtime closed")
	// ErrInvalidConfig means Config.Validate failed.
	ErrInvalidConfig = errors.New("client: invalid config")
	// ErrNoStoreDir means Config.Dir was given on a platform without the
	// durable store (js, wasip1): give Config.Store instead.
	ErrNoStoreDir = errors.New("client: Config.Dir is not supported on this platform; set Config.Store")
	// ErrInvalidVolume means a volume ID is the zero or malformed ID.
	ErrInvalidVolume = errors.New("client: invalid volume id")
	// ErrInvalidPage means a page index is 0 or a page is not 4096 bytes.
	ErrInvalidPage = errors.New("client: invalid page")
)

// Status is a volume replica's sync status.
type Status uint8

// Volume statuses.
const (
	// StatusOk: no conflict, no push of unknown outcome.
	StatusOk Status = iota
	// StatusRejectedCommit: the cluster rejected a push (stale base); the
	// local commits are intact until Reset, Replay or Fork.
	StatusRejectedCommit
	// StatusConflict: a pull found remote commits while local commits were
	// not pushed.
	StatusConflict
	// StatusInterruptedPush: a push is recorded and its outcome is not
	// known yet (in flight, or cut by a crash or a network failure); the
	// next Push resends the identical commit.
	StatusInterruptedPush
)

func (s Status) String() string {
	switch s {
	case StatusOk:
		return "ok"
	case StatusRejectedCommit:
		return "rejected_commit"
	case StatusConflict:
		return "conflict"
	case StatusInterruptedPush:
		return "interrupted_push"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Store is the replica's local store (see client/store).
type Store = store.Store

// Config configures a Runtime (Open).
type Config struct {
	// Dir is the durable store's directory (a bbolt file, client.db);
	// "" means an in-memory store with no durability. Not supported on js
	// and wasip1 (ErrNoStoreDir): give Store there.
	Dir string
	// Endpoints are node or edge URLs. None: local-only (every fetch,
	// push and pull fails with ErrNoEndpoints).
	Endpoints []string
	// Store overrides Dir: store.NewMem() or a custom Store.
	Store Store
	// Oracle makes each volume's prefetch oracle; nil means DefaultOracle
	// (Leap); NoPrefetch disables prediction.
	Oracle func() Oracle
	// MaxPrefetch caps the predicted pages fetched with one miss.
	// Default 64 (0 means the default); negative disables prefetch; at most
	// MaxPrefetchLimit (one ReadPages carries the miss and its predictions,
	// and the cluster's default cap is 1024 pages per read).
	MaxPrefetch int
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient is the RPC client's HTTP client; nil: DefaultHTTPClient.
	HTTPClient *http.Client
	// Options are extra RPC client options (attempts, backoff).
	Options []Option
}

// DefaultConfig returns a Config with the defaults filled in (in-memory
// store, no endpoints).
func DefaultConfig() Config { return Config{MaxPrefetch: 64} }

// MaxPrefetchLimit is the largest Config.MaxPrefetch.
const MaxPrefetchLimit = 1023

// Validate checks the config.
func (c Config) Validate() error {
	if c.MaxPrefetch > MaxPrefetchLimit {
		return fmt.Errorf("%w: MaxPrefetch %d > %d", ErrInvalidConfig, c.MaxPrefetch, MaxPrefetchLimit)
	}
	for _, e := range c.Endpoints {
		if e == "" {
			return fmt.Errorf("%w: empty endpoint", ErrInvalidConfig)
		}
	}
	return nil
}

// DefaultOracle makes the prefetch oracle used when Config.Oracle is nil:
// a Leap oracle (client/prefetch) with its defaults.
var DefaultOracle = func() Oracle { return prefetch.NewLeap(prefetch.DefaultLeapConfig()) }

// NoPrefetch is an oracle factory that predicts nothing.
func NoPrefetch() Oracle { return noOracle{} }

type noOracle struct{}

func (noOracle) Observe(volume.PageIdx, bool)                 {}
func (noOracle) Predict(volume.PageIdx, int) []volume.PageIdx { return nil }

// Runtime is a set of local volume replicas in one store, syncing with
// one cluster. It is safe for concurrent use.
type Runtime struct {
	cfg   Config
	store Store
	owned bool // store opened by Open (closed by Close)
	rpc   *Client
	log   *slog.Logger

	mu      sync.Mutex
	closed  bool
	volumes map[volume.ID]*Volume
	wg      sync.WaitGroup // background sync loops
}

// Open opens the local store (creating it on first use) and returns a
// Runtime. A store that is not a client store, or is damaged, is an error
// (never rebuilt).
func Open(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxPrefetch == 0 {
		cfg.MaxPrefetch = 64
	}
	if cfg.Oracle == nil {
		cfg.Oracle = DefaultOracle
	}
	rt := &Runtime{cfg: cfg, log: cfg.Logger, volumes: make(map[volume.ID]*Volume)}
	if rt.log == nil {
		rt.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Endpoints) > 0 {
		opts := append([]Option(nil), cfg.Options...)
		if cfg.HTTPClient != nil {
			opts = append([]Option{WithHTTPClient(cfg.HTTPClient)}, opts...)
		}
		c, err := New(cfg.Endpoints, opts...)
		if err != nil {
			return nil, err
		}
		rt.rpc = c
	}
	switch {
	case cfg.Store != nil:
		rt.store = cfg.Store
	case cfg.Dir != "":
		s, err := openDir(cfg.Dir)
		if err != nil {
			return nil, err
		}
		rt.store, rt.owned = s, true
	default:
		rt.store, rt.owned = store.NewMem(), true
	}
	if err := checkFormat(rt.store); err != nil {
		if rt.owned {
			_ = rt.store.Close()
		}
		return nil, err
	}
	return rt, nil
}

// checkFormat stamps a new store, or checks an existing one's format.
func checkFormat(s Store) error {
	return s.Update(func(tx store.Tx) error {
		f := tx.Get(store.Meta, []byte("format"))
		if f != nil {
			if string(f) != storeFormat {
				return fmt.Errorf("open client store: %w: format %q, want %q", store.ErrCorrupt, f, storeFormat)
			}
			return nil
		}
		for _, b := range []store.Bucket{store.Volumes, store.Pages, store.Commits} {
			err := tx.Scan(b, nil, func(k, v []byte) error {
				return fmt.Errorf("open client store: %w: bucket %s has data but the store has no format", store.ErrCorrupt, b)
			})
			if err != nil {
				return err
			}
		}
		return tx.Put(store.Meta, []byte("format"), []byte(storeFormat))
	})
}

// Close stops every background sync loop, waits for them, and closes the
// store if Open opened it.
func (rt *Runtime) Close() error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	vols := make([]*Volume, 0, len(rt.volumes))
	for _, v := range rt.volumes {
		vols = append(vols, v)
	}
	rt.mu.Unlock()
	for _, v := range vols {
		v.StopSync()
	}
	rt.wg.Wait()
	if rt.owned {
		return rt.store.Close()
	}
	return nil
}

// Volume returns the local replica of vid, created (empty, at remote LSN
// 0) on first use; the same *Volume for the same vid.
func (rt *Runtime) Volume(ctx context.Context, vid volume.ID) (*Volume, error) {
	if !vid.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidVolume, vid.String())
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, ErrClosed
	}
	if v, ok := rt.volumes[vid]; ok {
		return v, nil
	}
	var st volState
	err := rt.store.Update(func(tx store.Tx) error {
		b := tx.Get(store.Volumes, vid[:])
		if b == nil {
			enc, err := encodeState(st)
			if err != nil {
				return err
			}
			return tx.Put(store.Volumes, vid[:], enc)
		}
		var err error
		st, err = decodeState(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open volume %s: %w", vid, err)
	}
	v := newVolume(rt, vid, st)
	rt.volumes[vid] = v
	return v, nil
}

// rename moves v from old to its new vid in the runtime's map (Fork).
func (rt *Runtime) rename(v *Volume, old, vid volume.ID) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.volumes[old] == v {
		delete(rt.volumes, old)
	}
	rt.volumes[vid] = v
}

func (rt *Runtime) client() (*Client, error) {
	if rt.rpc == nil {
		return nil, ErrNoEndpoints
	}
	return rt.rpc, nil
}
