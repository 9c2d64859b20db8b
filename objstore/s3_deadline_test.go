package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
)

// counter sums the values of a counter family's series whose labels
// include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// within runs f and fails the test if it has not returned after bound (a
// hang, not a slow machine: bound is far above what f needs).
func within(t *testing.T, bound time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("%s still blocked after %v", what, bound)
		return nil
	}
}

// A blackholed path (packets dropped, no reset) fails calls within the
// per-attempt deadlines set in the URL, retried, not when TCP gives up;
// after the heal the store works again.
func TestS3_BlackholeFailsWithinDeadline(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	p := s3test.StartProxy(t, srv.Endpoint)
	reg := prometheus.NewRegistry()
	s := open(t, srv.URLVia(p, "p")+"&first_byte_timeout=200ms&attempt_timeout=2s&max_attempts=3&max_backoff=10ms&hedge_after=0",
		objstore.WithRegisterer(reg))
	ctx := context.Background() // no deadline of the caller's: only the store's
	if err := s.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("Put before the blackhole: %v", err)
	}
	p.Blackhole()
	// Deltas: on a loaded machine the healthy Put may have timed out too.
	before := map[string][2]float64{}
	for _, op := range []string{"put", "get"} {
		before[op] = [2]float64{
			counter(t, reg, "graft_objstore_timeouts_total", map[string]string{"op": op, "kind": "first_byte"}),
			counter(t, reg, "graft_objstore_retries_total", map[string]string{"op": op}),
		}
	}
	err := within(t, 20*time.Second, "Put during the blackhole", func() error { return s.Put(ctx, "k2", []byte("y")) })
	if !errors.Is(err, objstore.ErrTimeout) || errors.Is(err, context.Canceled) {
		t.Fatalf("Put during the blackhole = %v, want ErrTimeout (and not context.Canceled)", err)
	}
	_, err = within2(t, "Get during the blackhole", func() ([]byte, error) { return s.Get(ctx, "k") })
	if !errors.Is(err, objstore.ErrTimeout) {
		t.Fatalf("Get during the blackhole = %v, want ErrTimeout", err)
	}
	for _, op := range []string{"put", "get"} {
		if got := counter(t, reg, "graft_objstore_timeouts_total", map[string]string{"op": op, "kind": "first_byte"}) - before[op][0]; got != 3 {
			t.Errorf("%s first-byte timeouts during the blackhole = %v, want 3 (one per attempt)", op, got)
		}
		if got := counter(t, reg, "graft_objstore_retries_total", map[string]string{"op": op}) - before[op][1]; got != 2 {
			t.Errorf("%s retries during the blackhole = %v, want 2", op, got)
		}
	}
	p.Heal()
	got, err := s.Get(ctx, "k")
	if err != nil || string(got) != "x" {
		t.Fatalf("Get after the heal = %q, %v", got, err)
	}
}

func within2(t *testing.T, what string, f func() ([]byte, error)) ([]byte, error) {
	t.Helper()
	var b []byte
	err := within(t, 20*time.Second, what, func() error {
		var err error
		b, err = f()
		return err
	})
	return b, err
}

// A body that stalls half way is an attempt timeout, retried; the retry
// reads the whole object.
func TestS3_StalledBodyIsRetried(t *testing.T) {
	t.Parallel()
	var gets atomic.Int64
	srv := s3test.StartHandler(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.RawQuery, "x-id=GetObject") && gets.Add(1) == 1 {
				w.Header().Set("Content-Length", "10")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("01234"))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	reg := prometheus.NewRegistry()
	s := open(t, srv.URL("p")+"&attempt_timeout=1s&max_attempts=3&max_backoff=10ms&hedge_after=0", objstore.WithRegisterer(reg))
	ctx := context.Background()
	if err := s.Put(ctx, "k", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	got, err := within2(t, "Get of a stalled body", func() ([]byte, error) { return s.Get(ctx, "k") })
	if err != nil || string(got) != "0123456789" {
		t.Fatalf("Get = %q, %v; want the whole object from the retry", got, err)
	}
	if n := counter(t, reg, "graft_objstore_timeouts_total", map[string]string{"op": "get", "kind": "attempt"}); n < 1 {
		t.Errorf("get attempt timeouts = %v, want at least 1 (the stalled body)", n)
	}
	if n := counter(t, reg, "graft_objstore_retries_total", map[string]string{"op": "get"}); n < 1 {
		t.Errorf("get retries = %v, want at least 1", n)
	}
}

// A GET whose connection holds its response is hedged: a second request on
// another connection answers, the held one is cancelled.
func TestS3_HedgedGet(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	p := s3test.StartProxy(t, srv.Endpoint)
	data := bytes.Repeat([]byte("log record "), 100)
	direct := open(t, srv.URL("p"))
	if err := direct.Put(t.Context(), "k", data); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	// The first-byte timeout is far off: only the hedge can answer.
	s := open(t, srv.URLVia(p, "p")+"&first_byte_timeout=10m&attempt_timeout=10m&hedge_after=100ms&hedge_max=100ms",
		objstore.WithRegisterer(reg))
	p.HoldNext(1) // the store's first connection: responses held until Release
	t.Cleanup(p.Release)
	got, err := within2(t, "Get on a held connection", func() ([]byte, error) { return s.Get(context.Background(), "k") })
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("hedged Get = %d bytes, %v; want %d bytes", len(got), err, len(data))
	}
	if n := counter(t, reg, "graft_objstore_hedges_total", map[string]string{"op": "get"}); n != 1 {
		t.Errorf("hedges = %v, want 1", n)
	}
	if n := counter(t, reg, "graft_objstore_hedge_wins_total", map[string]string{"op": "get"}); n != 1 {
		t.Errorf("hedge wins = %v, want 1", n)
	}
	if n := p.Accepted(); n != 2 {
		t.Errorf("proxy accepted %d connections, want 2 (the held one and the hedge)", n)
	}
}

// A middlebox lost every open flow: the pooled connections are dead, new
// ones work. After the first timeout the store drops its idle connections,
// so the retry dials a fresh one instead of trying the next dead one.
func TestS3_DeadPoolRecoversInOneRetry(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	p := s3test.StartProxy(t, srv.Endpoint)
	ctx := context.Background()
	if err := open(t, srv.URL("p")).Put(ctx, "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	s := open(t, srv.URLVia(p, "p")+"&first_byte_timeout=1s&max_attempts=2&max_backoff=10ms&hedge_after=0")
	// Three Gets in flight at once, on three connections that then idle in
	// the pool.
	conns := p.Accepted()
	p.HoldNext(3)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := s.Get(ctx, "k")
			errs <- err
		}()
	}
	pollUntil(t, func() bool { return p.Accepted() == conns+3 })
	p.Release()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	p.Cut()
	pooled := p.Accepted()
	got, err := within2(t, "Get over a dead pool", func() ([]byte, error) { return s.Get(ctx, "k") })
	if err != nil || string(got) != "x" {
		t.Fatalf("Get over a dead pool = %q, %v; want x on the retry", got, err)
	}
	if n := p.Accepted() - pooled; n != 1 {
		t.Fatalf("the retry opened %d connections, want 1", n)
	}
}

// pollUntil polls cond until it holds, failing the test after a minute.
func pollUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
