package objstore

import (
	"testing"
	"time"
)

func TestLatencies_Quantile(t *testing.T) {
	t.Parallel()
	l := latencies{q: 0.95}
	for i := 1; i < minLatencySamples; i++ {
		l.add(time.Duration(i) * time.Millisecond)
	}
	if _, ok := l.quantile(); ok {
		t.Fatal("quantile trusted below the minimum sample count")
	}
	// 1..100ms: p95 is 95ms.
	l = latencies{q: 0.95}
	for i := 1; i <= 100; i++ {
		l.add(time.Duration(i) * time.Millisecond)
	}
	if q, ok := l.quantile(); !ok || q != 95*time.Millisecond {
		t.Fatalf("p95 of 1..100ms = %v, %v; want 95ms", q, ok)
	}
	// The ring keeps the newest samples: after 128 of 1s, p95 is 1s.
	for range latencySamples {
		l.add(time.Second)
	}
	if q, _ := l.quantile(); q != time.Second {
		t.Fatalf("p95 after the ring turned over = %v, want 1s", q)
	}
}

func TestS3Store_HedgeDelay(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.HedgeAfter, cfg.HedgeMax = 20*time.Millisecond, 500*time.Millisecond
	for _, tc := range []struct {
		sample time.Duration
		n      int
		want   time.Duration
	}{
		{time.Millisecond, minLatencySamples - 1, cfg.HedgeMax}, // too few samples
		{time.Millisecond, minLatencySamples, cfg.HedgeAfter},   // floor
		{100 * time.Millisecond, 32, 100 * time.Millisecond},
		{time.Minute, 32, cfg.HedgeMax}, // ceiling
	} {
		s := &s3Store{cfg: cfg, latency: latencies{q: cfg.HedgeQuantile}}
		for range tc.n {
			s.latency.add(tc.sample)
		}
		if got := s.hedgeDelay(); got != tc.want {
			t.Errorf("%d samples of %v: hedge delay %v, want %v", tc.n, tc.sample, got, tc.want)
		}
	}
}
