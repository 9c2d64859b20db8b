package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// Edge is a running edge: its caches, upstream client, object-store view
// and watch hubs. It is safe for concurrent use.
type Edge struct {
	cfg      Config
	log      *slog.Logger
	up       *client.Client
	pages    *otter.Cache[pageKey, []byte]
	meta     *otter.Cache[metaKey, uint64]
	ranges   *otter.Cache[rangeKey, rangeVal]      // grafts and commit metadata of fixed ranges
	heads    *otter.Cache[volume.ID, volume.LSN]   // newest snapshot known to exist, per volume
	recent   *otter.Cache[volume.ID, *recentSnaps] // resolved snapshots, per volume
	bucket   *bucket                               // nil without an object store
	disk     *disk                                 // nil without a cache dir
	store    objstore.Store
	registry *prometheus.Registry
	metrics  *metrics

	ctx    context.Context // ends at Close: watch hubs, bucket refreshes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	watchMu sync.Mutex
	watches map[volume.ID]*watchHub

	revoked atomic.Pointer[map[string]struct{}] // the cluster's list, refreshed
}

// New returns an edge for cfg; Close releases it.
func New(ctx context.Context, cfg Config) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fallback := ""
	if cfg.UpstreamToken != "" {
		fallback = auth.Bearer(cfg.UpstreamToken)
	}
	up, err := client.New(cfg.Upstream, client.WithAttempts(cfg.UpstreamAttempts), client.WithAttemptTimeout(cfg.UpstreamAttemptTimeout),
		client.WithRootCAs(cfg.UpstreamCAs), client.WithInterceptors(auth.ForwardCredential(fallback)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	e := &Edge{cfg: cfg, log: log, up: up, registry: prometheus.NewRegistry(), watches: map[volume.ID]*watchHub{}}
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := e.newCaches(); err != nil {
		return nil, err
	}
	e.metrics = newMetrics(e.registry, e)
	if cfg.CacheDir != "" {
		d, recs, err := openDisk(cfg.CacheDir, cfg.DiskBytes, log)
		if err != nil {
			e.cancel()
			return nil, err
		}
		for _, r := range recs {
			e.meta.Set(r.key, r.val)
		}
		d.snapshot = func() []metaRecord {
			var out []metaRecord
			for k, v := range e.meta.All() {
				out = append(out, metaRecord{key: k, val: v})
			}
			return out
		}
		e.disk = d
		go d.run()
		log.Info("disk cache opened", "dir", cfg.CacheDir, "entries", len(recs), "page_files", len(d.files))
	}
	if cfg.Auth != nil {
		e.wg.Add(1)
		go e.refreshRevocations()
	}
	if cfg.ObjectStore != "" {
		store, err := objstore.Open(ctx, cfg.ObjectStore)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("edge: open object store: %w", err)
		}
		e.store = store
		if e.bucket, err = newBucket(store, cfg.HistoryRefresh); err != nil {
			store.Close()
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Close stops the watch hubs and releases the object store.
func (e *Edge) Close() error {
	e.cancel()
	e.wg.Wait()
	var errs []error
	if e.disk != nil {
		errs = append(errs, e.disk.close())
	}
	e.pages.StopAllGoroutines()
	e.meta.StopAllGoroutines()
	e.ranges.StopAllGoroutines()
	e.heads.StopAllGoroutines()
	e.recent.StopAllGoroutines()
	if e.store != nil {
		errs = append(errs, e.store.Close())
	}
	return errors.Join(errs...)
}

// Handler returns the edge's HTTP surface: graft.v1.VolumeService (Connect,
// gRPC and gRPC-Web; binary and JSON), the status page (/), /healthz,
// /readyz and /metrics.
func (e *Edge) Handler() http.Handler {
	// Responses are never compressed: pages hardly compress, and an
	// uncompressed body keeps one strong ETag per representation.
	opts := []connect.HandlerOption{connect.WithCompressMinBytes(1 << 62)}
	if e.cfg.Auth != nil {
		// First, so a refused request costs no work.
		g := auth.NewGuard(e.cfg.Auth, e.tokenRevoked, e.log.With("component", "auth"))
		opts = append(opts, connect.WithInterceptors(auth.NewInterceptor(g)))
	}
	opts = append(opts, connect.WithInterceptors(e.metrics.interceptor()))
	mux := http.NewServeMux()
	path, h := graftv1connect.NewVolumeServiceHandler(&service{e: e}, opts...)
	mux.Handle(path, withETag(h))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", e.serveReady)
	mux.HandleFunc("GET /{$}", e.serveStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{}))
	return mux
}

// serveReady answers 200 when the cluster upstream has a leader.
func (e *Edge) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var firstErr error
	for i := range e.up.Endpoints() {
		resp, err := e.up.Cluster(i).Status(ctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
		if err == nil && resp.Msg.GetLeaderId() != "" {
			fmt.Fprintf(w, "ok upstream=%s leader=%s\n", e.up.Endpoints()[i], resp.Msg.GetLeaderId())
			return
		}
		if c := connect.CodeOf(err); c == connect.CodeUnauthenticated || c == connect.CodePermissionDenied {
			// Auth on upstream and no token of our own: its /readyz
			// needs none.
			if err = e.upstreamReady(ctx, e.up.Endpoints()[i]); err == nil {
				fmt.Fprintf(w, "ok upstream=%s\n", e.up.Endpoints()[i])
				return
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	http.Error(w, fmt.Sprintf("no upstream with a leader (%v)", firstErr), http.StatusServiceUnavailable)
}

// Serve serves the edge on ln until ctx ends.
func (e *Edge) Serve(ctx context.Context, ln net.Listener) error {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	srv := &http.Server{
		Handler:           e.Handler(),
		Protocols:         p,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	if e.cfg.TLS != nil {
		p.SetHTTP2(true)
		srv.TLSConfig = e.cfg.TLS.ServerConfig(false)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.cancel() // ends the watch streams, so Shutdown need not wait for them
		_ = srv.Shutdown(sctx)
	}()
	var err error
	if e.cfg.TLS != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Run serves an edge for cfg on cfg.Listen until ctx ends. ready, when not
// nil, is called with the bound address once the edge listens.
func Run(ctx context.Context, cfg Config, ready func(addr string)) error {
	e, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("edge: listen: %w", err)
	}
	e.log.Info("edge serving", "addr", ln.Addr().String(), "upstream", cfg.Upstream, "object_store", cfg.ObjectStore != "", "cache_bytes", cfg.CacheBytes)
	if ready != nil {
		ready(ln.Addr().String())
	}
	return e.Serve(ctx, ln)
}

// upstreamErr turns an error of a call to the cluster into the error the
// edge answers: the cluster's code, message, details and Retry-After,
// unchanged.
func upstreamErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		out := connect.NewError(ce.Code(), errors.New(ce.Message()))
		if ce.Message() == "" {
			out = connect.NewError(ce.Code(), nil)
		}
		for _, d := range ce.Details() {
			out.AddDetail(d)
		}
		if v := ce.Meta().Get("Retry-After"); v != "" {
			out.Meta().Set("Retry-After", v)
		}
		return out
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, ErrBadUpstream):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%w; retry", err))
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("edge: upstream: %w", err))
}
