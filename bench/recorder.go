package bench

import (
	"slices"
	"sync"
	"time"
)

// Recorder collects latency samples; safe for concurrent use. It keeps
// every sample (8 bytes each), so percentiles are exact.
type Recorder struct {
	mu      sync.Mutex
	samples []time.Duration
	errors  int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Record adds one sample.
func (r *Recorder) Record(d time.Duration) {
	r.mu.Lock()
	r.samples = append(r.samples, d)
	r.mu.Unlock()
}

// RecordError counts one failed operation.
func (r *Recorder) RecordError() {
	r.mu.Lock()
	r.errors++
	r.mu.Unlock()
}

// Samples returns a copy of the samples in arrival order.
func (r *Recorder) Samples() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.samples)
}

// Summary describes a set of samples.
type Summary struct {
	Count, Errors                  int
	Min, Mean, P50, P90, P99, P999 time.Duration
	Max                            time.Duration
}

// Summary computes the summary. Percentiles use the nearest-rank
// definition: Pq is the smallest sample with at least q% of samples at or
// below it.
func (r *Recorder) Summary() Summary {
	s := r.Samples()
	r.mu.Lock()
	errs := r.errors
	r.mu.Unlock()
	return Summarize(s, errs)
}

// Summarize computes a Summary of samples (which it sorts in place).
func Summarize(samples []time.Duration, errors int) Summary {
	out := Summary{Count: len(samples), Errors: errors}
	if len(samples) == 0 {
		return out
	}
	slices.Sort(samples)
	var total time.Duration
	for _, d := range samples {
		total += d
	}
	rank := func(q float64) time.Duration {
		// nearest rank: ceil(q * n), 1-based
		n := len(samples)
		k := int(q*float64(n) + 0.999999999)
		k = min(max(k, 1), n)
		return samples[k-1]
	}
	out.Min, out.Max = samples[0], samples[len(samples)-1]
	out.Mean = total / time.Duration(len(samples))
	out.P50, out.P90, out.P99, out.P999 = rank(0.50), rank(0.90), rank(0.99), rank(0.999)
	return out
}

// JSON returns the summary with durations in milliseconds.
func (s Summary) JSON() map[string]any {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return map[string]any{
		"count": s.Count, "errors": s.Errors,
		"p50_ms": ms(s.P50), "p90_ms": ms(s.P90), "p99_ms": ms(s.P99), "p999_ms": ms(s.P999),
		"max_ms": ms(s.Max), "mean_ms": ms(s.Mean),
	}
}
