package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graft-cluster/graft/volume"
)

// Errors of the background sync.
var (
	// ErrSyncRunning means StartSync was called while the volume's sync
	// loop runs.
	ErrSyncRunning = errors.New("client: sync already running")
)

// SyncOptions tune a volume's background sync loop.
type SyncOptions struct {
	// Interval is the longest the loop waits between passes when nothing
	// happens (a pass pushes local commits and pulls when the remote head
	// moved). Default 1s.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed pass (the
	// cluster unreachable); it doubles from MinBackoff. Defaults 50ms, 5s.
	MinBackoff, MaxBackoff time.Duration
	// CompactInterval, when positive, runs Compact after a successful pass
	// at most this often. Default 0: never (call Compact yourself).
	CompactInterval time.Duration
}

func (o *SyncOptions) fill() {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(o.MinBackoff, 5*time.Second)
	}
}

// syncLoop is a volume's background sync state.
type syncLoop struct {
	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	kick    chan struct{} // buffered 1: a local commit or a new remote head
	head    atomic.Uint64 // latest remote head heard from WatchVolume
	headVID atomic.Pointer[volume.ID]
	lastErr atomic.Pointer[error]
}

func (s *syncLoop) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// StartSync starts the volume's background sync loop (opt-in): it pushes
// local commits as they are made, pulls when WatchVolume reports a new
// remote head, and backs off while the cluster is unreachable. A rejected
// push stops pushing until Reset, Replay or Fork. The loop runs until
// StopSync, ctx ends, or the Runtime closes (which waits for it).
func (v *Volume) StartSync(ctx context.Context, opts SyncOptions) error {
	opts.fill()
	rpc, err := v.rt.client()
	if err != nil {
		return fmt.Errorf("start sync: %w", err)
	}
	s := &v.syncState
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		select {
		case <-s.done: // ended with its ctx; start anew
			s.cancel()
		default:
			return ErrSyncRunning
		}
	}
	v.rt.mu.Lock()
	if v.rt.closed {
		v.rt.mu.Unlock()
		return ErrClosed
	}
	v.rt.wg.Add(1)
	v.rt.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.cancel, s.done, s.kick = cancel, done, make(chan struct{}, 1)
	s.lastErr.Store(nil)
	go func() {
		defer v.rt.wg.Done()
		// done, not s.done: StopSync may clear s.done before this
		// goroutine first runs.
		defer close(done)
		v.syncRun(ctx, rpc, opts)
	}()
	return nil
}

// StopSync stops the volume's background sync loop, if any, and waits
// for it.
func (v *Volume) StopSync() {
	s := &v.syncState
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// SyncError returns the error of the sync loop's last pass (nil: it
// succeeded, or no loop ran).
func (v *Volume) SyncError() error {
	if p := v.syncState.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// kickSync wakes the sync loop, if it runs.
func (v *Volume) kickSync() {
	s := &v.syncState
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		s.poke()
	}
}

func (v *Volume) syncRun(ctx context.Context, rpc *Client, opts SyncOptions) {
	s := &v.syncState
	var watchVID volume.ID
	w := &watcher{}
	defer w.stop()
	backoff := opts.MinBackoff
	lastCompact := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-timer.C:
		}
		if vid := v.VID(); vid != watchVID {
			w.stop()
			s.head.Store(0)
			watchVID = vid
			w = startWatcher(ctx, func(ctx context.Context) { v.watch(ctx, rpc, vid, opts) })
		}
		err := v.syncPass(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.lastErr.Store(&err)
			v.rt.log.Debug("client: sync pass failed", "vid", v.VID(), "err", err, "backoff", backoff)
			timer.Reset(backoff)
			backoff = min(2*backoff, opts.MaxBackoff)
			continue
		}
		s.lastErr.Store(nil)
		if opts.CompactInterval > 0 && time.Since(lastCompact) >= opts.CompactInterval {
			lastCompact = time.Now()
			if _, err := v.Compact(ctx); err != nil {
				v.rt.log.Warn("client: compact failed", "vid", v.VID(), "err", err)
			}
		}
		backoff = opts.MinBackoff
		timer.Reset(opts.Interval)
	}
}

// watcher is one running watch goroutine.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startWatcher(ctx context.Context, run func(context.Context)) *watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		run(ctx)
	}()
	return w
}

func (w *watcher) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
}

// syncPass pushes local commits and pulls when the remote head moved.
func (v *Volume) syncPass(ctx context.Context) error {
	v.mu.Lock()
	st, vid := v.state, v.vid
	v.mu.Unlock()
	if st.Status == StatusRejectedCommit || st.Status == StatusConflict {
		return nil // the caller resolves
	}
	if st.Push != nil || st.LocalLSN > st.SyncedLocal {
		if _, err := v.Push(ctx); err != nil {
			if errors.Is(err, ErrRejected) {
				return nil
			}
			return err
		}
		return nil
	}
	head := volume.LSN(v.syncState.head.Load())
	if hv := v.syncState.headVID.Load(); hv == nil || *hv != vid || head <= st.RemoteLSN {
		return nil
	}
	err := v.Pull(ctx)
	if errors.Is(err, ErrDiverged) || errors.Is(err, ErrRejected) {
		return nil
	}
	return err
}

// watch follows vid's remote head with WatchVolume, reconnecting (on the
// next endpoint) with backoff, and kicks the loop on each new head.
func (v *Volume) watch(ctx context.Context, rpc *Client, vid volume.ID, opts SyncOptions) {
	s := &v.syncState
	backoff := opts.MinBackoff
	for i := 0; ; i++ {
		err := rpc.WatchVolume(ctx, i, vid, volume.LSN(s.head.Load()), func(snap volume.Snapshot) error {
			backoff = opts.MinBackoff
			if snap.VID != vid {
				return nil
			}
			s.headVID.Store(&vid)
			s.head.Store(uint64(snap.LSN))
			s.poke()
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		v.rt.log.Debug("client: watch ended", "vid", vid, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, opts.MaxBackoff)
	}
}
