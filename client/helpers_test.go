package client_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

// gate is a reverse proxy to one upstream that a test takes down (its
// port refuses connections) and up again, on the same address.
type gate struct {
	tb       testing.TB
	addr     string
	upstream *url.URL
	mu       sync.Mutex
	srv      *http.Server
	// delayReads holds each ReadPages call this long (0: none).
	delayReads atomic.Int64
	// dropAcks makes Commit calls reach the cluster and lose the answer
	// (the connection is cut): an unknown outcome.
	dropAcks atomic.Bool
	// outOfRange makes ReadPages answer out_of_range, as a cluster does
	// below its retention horizon.
	outOfRange atomic.Bool
	// reads counts ReadPages calls forwarded; pages the pages they asked.
	reads, commits atomic.Int64
}

func newGate(tb testing.TB, upstream string) *gate {
	tb.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g := &gate{tb: tb, addr: ln.Addr().String(), upstream: u}
	g.serve(ln)
	tb.Cleanup(g.down)
	return g
}

func (g *gate) URL() string { return "http://" + g.addr }

func (g *gate) serve(ln net.Listener) {
	proxy := httputil.NewSingleHostReverseProxy(g.upstream)
	proxy.FlushInterval = -1
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/ReadPages"):
			g.reads.Add(1)
			if g.outOfRange.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"code":"out_of_range","message":"lsn is below the oldest readable lsn"}`))
				return
			}
			if d := time.Duration(g.delayReads.Load()); d > 0 {
				time.Sleep(d)
			}
		case strings.HasSuffix(r.URL.Path, "/Commit"):
			g.commits.Add(1)
			if g.dropAcks.Load() {
				proxy.ServeHTTP(httptest.NewRecorder(), r)
				panic(http.ErrAbortHandler)
			}
		}
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h}
	g.mu.Lock()
	g.srv = srv
	g.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every connection.
func (g *gate) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil {
		_ = g.srv.Close()
		g.srv = nil
	}
}

// up listens again on the same address.
func (g *gate) up() {
	g.tb.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ln, err = net.Listen("tcp", g.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		g.tb.Fatal(err)
	}
	g.serve(ln)
}

// fastFail makes RPCs give up within a second on an unreachable
// endpoint, yet ride out a leader change.
var fastFail = []client.Option{client.WithAttempts(5), client.WithBackoff(50 * time.Millisecond), client.WithAttemptTimeout(5 * time.Second)}

// seqOracle predicts the next pages in order.
type seqOracle struct{}

func (seqOracle) Observe(volume.PageIdx, bool) {}
func (seqOracle) Predict(idx volume.PageIdx, max int) []volume.PageIdx {
	out := make([]volume.PageIdx, 0, max)
	for i := 1; i <= max; i++ {
		out = append(out, idx+volume.PageIdx(i))
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
