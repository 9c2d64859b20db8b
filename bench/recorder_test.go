package bench_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/bench"
)

const ms = time.Millisecond

// seqMS returns 1..n milliseconds.
func seqMS(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * ms
	}
	return out
}

func TestRecorder_Summary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		samples []time.Duration
		want    bench.Summary
	}{
		{"empty", nil, bench.Summary{}},
		{"one sample", []time.Duration{7 * ms}, bench.Summary{
			Count: 1, Min: 7 * ms, Mean: 7 * ms, P50: 7 * ms, P90: 7 * ms, P99: 7 * ms, P999: 7 * ms, Max: 7 * ms,
		}},
		{"1..10 ms", seqMS(10), bench.Summary{
			Count: 10, Min: 1 * ms, Mean: 5500 * time.Microsecond, P50: 5 * ms, P90: 9 * ms, P99: 10 * ms, P999: 10 * ms, Max: 10 * ms,
		}},
		{"1..100 ms", seqMS(100), bench.Summary{
			Count: 100, Min: 1 * ms, Mean: 50500 * time.Microsecond, P50: 50 * ms, P90: 90 * ms, P99: 99 * ms, P999: 100 * ms, Max: 100 * ms,
		}},
		{"1..1000 ms", seqMS(1000), bench.Summary{
			Count: 1000, Min: 1 * ms, Mean: 500500 * time.Microsecond, P50: 500 * ms, P90: 900 * ms, P99: 990 * ms, P999: 999 * ms, Max: 1000 * ms,
		}},
		{"ties", []time.Duration{2 * ms, 1 * ms, 2 * ms, 2 * ms}, bench.Summary{
			Count: 4, Min: 1 * ms, Mean: 1750 * time.Microsecond, P50: 2 * ms, P90: 2 * ms, P99: 2 * ms, P999: 2 * ms, Max: 2 * ms,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r bench.Recorder // the zero value is ready to use
			shuffled := slices.Clone(tt.samples)
			rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for _, d := range shuffled {
				r.Record(d)
			}
			if got := r.Summary(); got != tt.want {
				t.Errorf("Summary =\n %+v\nwant\n %+v", got, tt.want)
			}
			if got := r.Samples(); !slices.Equal(got, shuffled) {
				t.Errorf("Samples = %v, want recording order %v", got, shuffled)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	s := seqMS(100)
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{-1, 1 * ms}, {0, 1 * ms}, {0.5, 1 * ms}, {1, 1 * ms}, {1.01, 2 * ms},
		{50, 50 * ms}, {90, 90 * ms}, {99, 99 * ms}, {99.9, 100 * ms}, {100, 100 * ms}, {150, 100 * ms},
	}
	for _, tt := range tests {
		if got := bench.Percentile(s, tt.p); got != tt.want {
			t.Errorf("Percentile(1..100ms, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := bench.Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(empty) = %v, want 0", got)
	}
}

func TestRecorder_Samples_keepsOrderAcrossChunks(t *testing.T) {
	t.Parallel()
	const n = 50_000 // several storage chunks
	r := bench.NewRecorder()
	want := make([]time.Duration, n)
	for i := range want {
		want[i] = time.Duration(n - i) // descending, so sorting would show
		r.Record(want[i])
	}
	if got := r.Samples(); !slices.Equal(got, want) {
		t.Fatalf("Samples: got %d samples not in recording order", len(got))
	}
	counts, err := r.Histogram([]time.Duration{n / 2})
	if err != nil {
		t.Fatalf("Histogram: %v", err)
	}
	if !slices.Equal(counts, []int{n / 2, n / 2}) {
		t.Errorf("Histogram = %v, want [%d %d]", counts, n/2, n/2)
	}
	if s := r.Summary(); s.Count != n || s.Min != 1 || s.Max != n || s.P50 != n/2 {
		t.Errorf("Summary = %+v", s)
	}
}

func TestRecorder_RecordError(t *testing.T) {
	t.Parallel()
	r := bench.NewRecorder()
	r.RecordError()
	r.RecordError()
	r.Record(3 * ms)
	if got, want := r.Summary(), (bench.Summary{Count: 1, Errors: 2, Min: 3 * ms, Mean: 3 * ms, P50: 3 * ms,
		P90: 3 * ms, P99: 3 * ms, P999: 3 * ms, Max: 3 * ms}); got != want {
		t.Errorf("Summary = %+v, want %+v", got, want)
	}
}

func TestRecorder_concurrentUse(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 8, 2000 // more samples than one storage chunk
	r := bench.NewRecorder()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				r.Record(time.Duration(w*perWriter + i + 1))
			}
			r.RecordError()
		})
	}
	wg.Go(func() { // readers race with the writers
		for range 50 {
			if s := r.Summary(); s.Count > writers*perWriter || s.Max < s.P50 {
				t.Errorf("inconsistent summary while recording: %+v", s)
			}
			_ = r.Samples()
			if _, err := r.Histogram([]time.Duration{100}); err != nil {
				t.Errorf("Histogram: %v", err)
			}
		}
	})
	wg.Wait()
	s := r.Summary()
	if s.Count != writers*perWriter || s.Errors != writers || s.Min != 1 || s.Max != writers*perWriter {
		t.Fatalf("Summary = %+v, want %d samples 1..%[1]d and %d errors", s, writers*perWriter, writers)
	}
}

func TestRecorder_Histogram(t *testing.T) {
	t.Parallel()
	r := bench.NewRecorder()
	for _, d := range seqMS(10) {
		r.Record(d)
	}
	tests := []struct {
		name   string
		bounds []time.Duration
		want   []int
	}{
		{"upper bounds are inclusive", []time.Duration{1 * ms, 5 * ms, 9 * ms}, []int{1, 4, 4, 1}},
		{"all below the first bound", []time.Duration{time.Second}, []int{10, 0}},
		{"no bounds", nil, []int{10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Histogram(tt.bounds)
			if err != nil {
				t.Fatalf("Histogram: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Histogram(%v) = %v, want %v", tt.bounds, got, tt.want)
			}
		})
	}
	for _, bad := range [][]time.Duration{{2 * ms, 1 * ms}, {1 * ms, 1 * ms}} {
		if _, err := r.Histogram(bad); !errors.Is(err, bench.ErrInvalidArgument) {
			t.Errorf("Histogram(%v) error = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestSummary_JSON(t *testing.T) {
	t.Parallel()
	r := bench.NewRecorder()
	for _, d := range seqMS(100) {
		r.Record(d)
	}
	r.RecordError()
	b, err := json.Marshal(r.Summary().JSON())
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	want := map[string]any{
		"count": 100.0, "errors": 1.0, "min_ms": 1.0, "mean_ms": 50.5,
		"p50_ms": 50.0, "p90_ms": 90.0, "p99_ms": 99.0, "p999_ms": 100.0, "max_ms": 100.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON = %s, want %v", b, want)
	}
}

func TestSummary_String(t *testing.T) {
	t.Parallel()
	s := bench.Summarize([]time.Duration{1500 * time.Microsecond}, 2)
	want := "n=1 errors=2 min=1.500ms mean=1.500ms p50=1.500ms p90=1.500ms p99=1.500ms p99.9=1.500ms max=1.500ms"
	if got := s.String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func BenchmarkRecorder_Record(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		r := bench.NewRecorder()
		for b.Loop() {
			r.Record(time.Millisecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		r := bench.NewRecorder()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Record(time.Millisecond)
			}
		})
	})
}

func BenchmarkRecorder_Summary(b *testing.B) {
	r := bench.NewRecorder()
	for i := range 1_000_000 {
		r.Record(time.Duration(rand.IntN(10_000_000) + i))
	}
	for b.Loop() {
		_ = r.Summary()
	}
}
