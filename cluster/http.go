package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/auth"
)

var discardLogger = slog.New(slog.DiscardHandler)

// Handler returns the node's HTTP surface: the Connect services (Connect,
// gRPC and gRPC-Web; binary and JSON), the status page (/), /healthz,
// /readyz and /metrics.
func (n *Node) Handler() http.Handler {
	// Compress only large responses (page reads), for clients that ask.
	opts := []connect.HandlerOption{connect.WithCompressMinBytes(16 << 10)}
	if n.cfg.Auth != nil {
		// First, so a refused request costs no work.
		g := auth.NewGuard(n.cfg.Auth, n.fsm.TokenRevoked, n.log.With("component", "auth"))
		opts = append(opts, connect.WithInterceptors(auth.NewInterceptor(g)))
	}
	if max := n.cfg.Limits.MaxRequestBytes; max > 0 {
		// Twice the commit limit, so a too-large commit is decoded and
		// answered with a precise invalid_argument; past that the transport
		// refuses it unread.
		opts = append(opts, connect.WithReadMaxBytes(2*max))
	}
	mux := http.NewServeMux()
	mux.Handle(graftv1connect.NewVolumeServiceHandler(&volumeService{n: n}, opts...))
	mux.Handle(graftv1connect.NewClusterServiceHandler(&clusterService{n: n}, opts...))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", n.serveReady)
	mux.HandleFunc("GET /{$}", n.serveStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{}))
	if n.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// serveReady answers 200 once the cluster has a leader this node knows of.
func (n *Node) serveReady(w http.ResponseWriter, r *http.Request) {
	n.closeMu.Lock()
	closed := n.closed
	n.closeMu.Unlock()
	leader := n.Leader()
	switch {
	case closed:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case n.isRemoved():
		http.Error(w, "removed from the cluster", http.StatusServiceUnavailable)
	case leader == "":
		http.Error(w, "no leader", http.StatusServiceUnavailable)
	default:
		fmt.Fprintf(w, "ok leader=%s state=%s\n", leader, n.raft.State())
	}
}

func (n *Node) serveHTTP() {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	n.http = &http.Server{
		Handler:           n.Handler(),
		Protocols:         p,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	if n.cfg.TLS != nil {
		p.SetUnencryptedHTTP2(false)
		p.SetHTTP2(true)
		n.http.TLSConfig = n.cfg.TLS.ServerConfig(false)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		serve := n.http.Serve
		if n.cfg.TLS != nil {
			serve = func(ln net.Listener) error { return n.http.ServeTLS(ln, "", "") }
		}
		if err := serve(n.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api server stopped", "err", err)
		}
	}()
}
