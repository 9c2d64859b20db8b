package bench

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// chunkLen is the number of samples per storage chunk (64 KiB). Samples are
// stored in fixed chunks rather than one growing slice so that Record never
// copies the samples so far while holding the lock: with one slice, every
// doubling past a million samples stalls all recording goroutines for
// milliseconds, which shows up in the very latencies being measured.
const chunkLen = 8192

// Recorder collects latency samples and an error count. It is safe for
// concurrent use, and its zero value is ready to use. It keeps every sample
// (8 bytes each), so percentiles are exact.
type Recorder struct {
	mu     sync.Mutex
	chunks [][]time.Duration // all full except the last
	n      int               // samples in chunks
	errors int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Record adds one successful operation's latency.
func (r *Recorder) Record(d time.Duration) {
	r.mu.Lock()
	last := len(r.chunks) - 1
	if last < 0 || len(r.chunks[last]) == chunkLen {
		r.chunks = append(r.chunks, make([]time.Duration, 0, chunkLen))
		last++
	}
	r.chunks[last] = append(r.chunks[last], d)
	r.n++
	r.mu.Unlock()
}

// samplesLocked returns a copy of the samples in recording order; r.mu must
// be held.
func (r *Recorder) samplesLocked() []time.Duration {
	out := make([]time.Duration, 0, r.n)
	for _, c := range r.chunks {
		out = append(out, c...)
	}
	return out
}

// RecordError counts one failed operation; it adds no latency sample.
func (r *Recorder) RecordError() {
	r.mu.Lock()
	r.errors++
	r.mu.Unlock()
}

// Samples returns a copy of the samples in the order they were recorded.
func (r *Recorder) Samples() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.samplesLocked()
}

// Summary summarizes the samples and errors recorded so far, as one
// consistent snapshot. It sorts a copy; recording may continue meanwhile.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	samples, errs := r.samplesLocked(), r.errors
	r.mu.Unlock()
	return Summarize(samples, errs)
}

// Histogram counts the samples per bucket. bounds are the buckets' inclusive
// upper bounds and must be strictly increasing: counts[0] is the number of
// samples <= bounds[0], counts[i] of those in (bounds[i-1], bounds[i]], and
// the extra last element counts, counts[len(bounds)], those > the last bound.
// An empty bounds puts every sample in counts[0].
func (r *Recorder) Histogram(bounds []time.Duration) ([]int, error) {
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= bounds[i-1] {
			return nil, fmt.Errorf("histogram: bound %d (%s) not above bound %d (%s): %w",
				i, bounds[i], i-1, bounds[i-1], ErrInvalidArgument)
		}
	}
	counts := make([]int, len(bounds)+1)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.chunks {
		for _, d := range c {
			i, _ := slices.BinarySearch(bounds, d) // first bound >= d
			counts[i]++
		}
	}
	return counts, nil
}

// Summary describes a set of latency samples. Percentiles follow the
// nearest-rank definition of Percentile. All durations are zero when Count
// is zero.
type Summary struct {
	Count  int // successful operations (samples)
	Errors int // failed operations, not in the samples

	Min, Mean, P50, P90, P99, P999, Max time.Duration
}

// Summarize computes the Summary of samples, sorting them in place, with
// errors failed operations.
func Summarize(samples []time.Duration, errors int) Summary {
	s := Summary{Count: len(samples), Errors: errors}
	if len(samples) == 0 {
		return s
	}
	slices.Sort(samples)
	var total time.Duration // overflows only past 292 years of samples
	for _, d := range samples {
		total += d
	}
	s.Min, s.Max = samples[0], samples[len(samples)-1]
	s.Mean = total / time.Duration(len(samples))
	s.P50 = Percentile(samples, 50)
	s.P90 = Percentile(samples, 90)
	s.P99 = Percentile(samples, 99)
	s.P999 = Percentile(samples, 99.9)
	return s
}

// Percentile returns the p-th percentile (p in percent, 0..100) of sorted,
// which must be in ascending order, by the nearest-rank definition: the
// smallest sample such that at least p% of the samples are at or below it,
// that is sorted[ceil(p/100*n)-1] for n samples. p <= 0 gives the minimum,
// p >= 100 the maximum, and an empty sorted gives 0. p is resolved to
// 1e-4 percent, with exact integer arithmetic, so that for 1..100 P90 is
// exactly the 90th sample.
//
// For the samples 1..100 ms: P50 = 50ms, P90 = 90ms, P99 = 99ms,
// P99.9 = 100ms. For 1..10 ms: P50 = 5ms, P90 = 9ms, P99 = 10ms.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := int64(len(sorted))
	if n == 0 {
		return 0
	}
	const scale = 1_000_000 // p in millionths (p percent = p*1e4 ppm)
	ppm := int64(math.Round(min(max(p, 0), 100) * scale / 100))
	rank := (ppm*n + scale - 1) / scale // ceil(ppm*n/scale); 1-based
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// JSON returns s in the form scripts consume, durations as float64
// milliseconds, under the keys count, errors, min_ms, mean_ms, p50_ms,
// p90_ms, p99_ms, p999_ms and max_ms.
func (s Summary) JSON() map[string]any {
	return map[string]any{
		"count":   s.Count,
		"errors":  s.Errors,
		"min_ms":  Millis(s.Min),
		"mean_ms": Millis(s.Mean),
		"p50_ms":  Millis(s.P50),
		"p90_ms":  Millis(s.P90),
		"p99_ms":  Millis(s.P99),
		"p999_ms": Millis(s.P999),
		"max_ms":  Millis(s.Max),
	}
}

// String formats s on one line for humans, in milliseconds.
func (s Summary) String() string {
	return fmt.Sprintf("n=%d errors=%d min=%.3fms mean=%.3fms p50=%.3fms p90=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms",
		s.Count, s.Errors, Millis(s.Min), Millis(s.Mean), Millis(s.P50), Millis(s.P90),
		Millis(s.P99), Millis(s.P999), Millis(s.Max))
}

// Millis converts d to float64 milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
