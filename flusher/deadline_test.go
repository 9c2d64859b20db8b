package flusher_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/volume"
)

// A store call that never returns (a stalled network path below the
// store's own deadlines) fails the round at RoundTimeout; the next round
// drains once the store answers.
func TestFlusher_RoundTimeout(t *testing.T) {
	fs, err := faulty.New(objstore.NewMemory(), faulty.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fs)
	vid := volume.MustNewID()
	e.commit(vid, 3)
	if err := fs.SetFault(faulty.OpPut, faulty.Fault{Hang: true}); err != nil {
		t.Fatal(err)
	}
	cfg := manualConfig()
	cfg.RoundTimeout = 100 * time.Millisecond
	fl := e.flusher(cfg)
	done := make(chan error, 1)
	go func() {
		_, err := fl.FlushOnce(context.Background(), true)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round on a hung store = %v, want its deadline", err)
		}
	case <-time.After(20 * time.Second):
		fs.ClearFaults()
		t.Fatal("round on a hung store still running after 20s")
	}
	if e.log.f.History(vid).Flushed != 0 || e.log.f.BufferBytes() == 0 {
		t.Fatal("a round that timed out trimmed the buffer")
	}
	fs.ClearFaults()
	if err := fl.FlushAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.check(context.Background())
}

// The network path to S3 is blackholed (packets dropped, no reset): flush
// rounds fail within the store's per-attempt deadlines instead of hanging
// until TCP gives up, the loop retries them, nothing is trimmed, and once
// the path heals the buffer drains by itself.
func TestFlusher_BlackholeDrainsAfterHeal(t *testing.T) {
	srv := s3test.Start(t)
	p := s3test.StartProxy(t, srv.Endpoint)
	store, err := objstore.Open(t.Context(),
		srv.URLVia(p, "f")+"&first_byte_timeout=200ms&attempt_timeout=2s&max_attempts=2&max_backoff=10ms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnv(t, store)
	reg := prometheus.NewRegistry()
	cfg := manualConfig()
	cfg.Interval = 10 * time.Millisecond
	cfg.MaxAge = 0
	cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	fl, err := flusher.New(cfg, e.log.f, store, e.reader, e.log, slogDiscard(), reg)
	if err != nil {
		t.Fatal(err)
	}
	vid := volume.MustNewID()
	for range 3 {
		e.commit(vid, 2)
	}
	head := e.models[vid].head

	p.Blackhole()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		fl.Run(ctx)
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	// Rounds fail (each within the store's deadlines) and are retried.
	pollUntil(t, func() bool { return gauge(t, reg, "graft_flush_errors_total") >= 3 })
	if h := e.log.f.History(vid); h.Flushed != 0 || e.log.f.BufferBytes() == 0 {
		t.Fatalf("history %+v, buffer %d bytes while the path is blackholed", h, e.log.f.BufferBytes())
	}
	p.Heal()
	pollUntil(t, func() bool { return e.log.f.History(vid).Flushed == head && e.log.f.BufferBytes() == 0 })
	cancel()
	<-stopped
	e.check(context.Background())
}

// gauge returns the value of an unlabelled counter or gauge.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}
