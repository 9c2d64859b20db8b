package bench_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/bench"
)

func TestRecorder_Summary(t *testing.T) {
	cases := []struct {
		name          string
		samples       []int // ms
		p50, p90, p99 time.Duration
	}{
		{"1..100", seq(100), 50 * time.Millisecond, 90 * time.Millisecond, 99 * time.Millisecond},
		{"one sample", []int{7}, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"1..10", seq(10), 5 * time.Millisecond, 9 * time.Millisecond, 10 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := bench.NewRecorder()
			for i := len(c.samples) - 1; i >= 0; i-- { // reverse order: summary must sort
				r.Record(time.Duration(c.samples[i]) * time.Millisecond)
			}
			s := r.Summary()
			if s.P50 != c.p50 || s.P90 != c.p90 || s.P99 != c.p99 || s.Count != len(c.samples) {
				t.Fatalf("got %+v", s)
			}
		})
	}
	if s := bench.NewRecorder().Summary(); s.Count != 0 || s.P99 != 0 {
		t.Fatalf("empty: %+v", s)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestRecorder_Concurrent(t *testing.T) {
	r := bench.NewRecorder()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				r.Record(time.Duration(i))
			}
			r.RecordError()
		}()
	}
	wg.Wait()
	if s := r.Summary(); s.Count != 8000 || s.Errors != 8 || s.Max != 999 {
		t.Fatalf("got %+v", s)
	}
}

func TestMeasureFsync(t *testing.T) {
	s, err := bench.MeasureFsync(context.Background(), t.TempDir(), 4160, 20)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 20 || s.P50 <= 0 || s.Max < s.P50 {
		t.Fatalf("got %+v", s)
	}
}

func BenchmarkRecorder_Record(b *testing.B) {
	r := bench.NewRecorder()
	for b.Loop() {
		r.Record(time.Millisecond)
	}
}
