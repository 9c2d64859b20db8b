package edge

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// withStore points every node at the object store url, flushing on
// request only, in small rounds, with tiny caches (so reads of flushed
// history really go to the bucket).
func withStore(url string) clustertest.Option {
	return func(_ int, c *cluster.Config) {
		c.ObjectStore = url
		c.Flush.Interval = 0
		c.Flush.MaxAge = time.Hour
		c.Flush.TargetBytes = 1 << 30
		c.Flush.RetryMin, c.Flush.RetryMax = 20*time.Millisecond, 200*time.Millisecond
		c.Flush.OrphanInterval = 0
		c.Flush.MaxRoundBytes = 8 * volume.PageSize
		c.Cache.Records, c.Cache.Segments, c.Cache.PageCacheBytes = 2, 2, 4*volume.PageSize
	}
}

// testEdge is an edge serving on loopback.
type testEdge struct {
	*Edge
	URL  string
	stop func(t *testing.T)
}

func startEdge(t *testing.T, edit func(*Config)) *testEdge {
	t.Helper()
	cfg := DefaultConfig()
	cfg.UpstreamAttemptTimeout = 3 * time.Second
	cfg.HistoryRefresh = 50 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	e, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("new edge: %v", err)
	}
	te := startServing(t, e)
	t.Cleanup(func() {
		te.stop(t)
		_ = e.Close()
	})
	return te
}

// startServing serves e on loopback until stop.
func startServing(t *testing.T, e *Edge) *testEdge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, ln) }()
	var once sync.Once
	scheme := "http://"
	if e.cfg.TLS != nil {
		scheme = "https://"
	}
	return &testEdge{Edge: e, URL: scheme + ln.Addr().String(), stop: func(t *testing.T) {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("edge serve: %v", err)
			}
		})
	}}
}

func (te *testEdge) client(t *testing.T) *client.Client {
	t.Helper()
	cl, err := client.New([]string{te.URL}, client.WithAttemptTimeout(5*time.Second), client.WithAttempts(2))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (te *testEdge) pages(source string) float64 {
	return testutil.ToFloat64(te.metrics.pages.WithLabelValues(source))
}

func (te *testEdge) requests(method, code string) float64 {
	return testutil.ToFloat64(te.metrics.requests.WithLabelValues(method, code))
}

// fill returns a page whose every byte says which volume, commit and page
// wrote it.
func fill(v int, lsn volume.LSN, idx volume.PageIdx) []byte {
	b := make([]byte, volume.PageSize)
	for i := range b {
		b[i] = byte(v*31 + int(lsn)*7 + int(idx)*13 + i/512)
	}
	return b
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func testutilCounter(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

// patientRaft slows elections down, so a loaded machine loses its leader
// less often.
func patientRaft(_ int, c *cluster.Config) {
	c.Raft.HeartbeatTimeout = time.Second
	c.Raft.ElectionTimeout = time.Second
	c.Raft.LeaderLeaseTimeout = 500 * time.Millisecond
}

// transient reports an error a loaded machine may cause (a leader lost, a
// deadline passed), which the caller may retry.
func transient(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		return true
	}
	return false
}

func testutilGauge(g prometheus.Gauge) float64 { return testutil.ToFloat64(g) }

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
