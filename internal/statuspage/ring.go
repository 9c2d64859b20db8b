package statuspage

import (
	"math"
	"sync"
	"time"
)

// Seconds is how far back a Ring remembers: one minute, one slot a second.
const Seconds = 60

// Latency buckets: bucket k holds durations in (bucketLow*r^(k-1),
// bucketLow*r^k] with r = 2^(1/4) (each bucket about 19% wider than the
// last), bucket 0 everything up to bucketLow, the last everything above.
// A percentile is reported as its bucket's upper bound, so it is at most
// 19% high.
const (
	bucketLow = 10 * time.Microsecond
	nBuckets  = 100 // 10µs * 2^(99/4) ≈ 280 s
)

// bucketBounds[k] is bucket k's upper bound.
var bucketBounds = func() [nBuckets]time.Duration {
	var b [nBuckets]time.Duration
	for k := range b {
		b[k] = time.Duration(float64(bucketLow) * math.Pow(2, float64(k)/4))
	}
	return b
}()

func bucketOf(d time.Duration) int {
	if d <= bucketLow {
		return 0
	}
	k := min(int(math.Ceil(4*math.Log2(float64(d)/float64(bucketLow)))), nBuckets-1)
	// Float rounding can land one off at an exact bound.
	for k > 0 && d <= bucketBounds[k-1] {
		k--
	}
	for k < nBuckets-1 && d > bucketBounds[k] {
		k++
	}
	return k
}

// Ring counts requests and their latencies per second for the last
// minute: Observe is cheap (one mutex, no allocation), Minute summarizes.
// The zero value is not usable; create it with NewRing. Safe for
// concurrent use.
type Ring struct {
	now func() time.Time

	mu   sync.Mutex
	secs [Seconds]second
}

// second is one slot: the Unix second it counts, or an older one (stale).
type second struct {
	unix   int64
	ok     uint32
	failed uint32
	hist   [nBuckets]uint32 // latencies of the ok requests
}

// NewRing returns an empty ring; now is its clock (nil: time.Now).
func NewRing(now func() time.Time) *Ring {
	if now == nil {
		now = time.Now
	}
	return &Ring{now: now}
}

// Observe counts one request that took d; only successful requests (ok)
// count towards the rate and the latency percentiles.
func (r *Ring) Observe(d time.Duration, ok bool) {
	t := r.now().Unix()
	r.mu.Lock()
	s := &r.secs[slot(t)]
	if s.unix != t {
		*s = second{unix: t}
	}
	if ok {
		s.ok++
		s.hist[bucketOf(d)]++
	} else {
		s.failed++
	}
	r.mu.Unlock()
}

func slot(unix int64) int { return int(((unix % Seconds) + Seconds) % Seconds) }

// Minute is a summary of the last Seconds complete seconds (the current,
// partial second is left out, so numbers do not jump within a second).
type Minute struct {
	// OK and Failed count the requests of the minute.
	OK, Failed uint64
	// Rate is OK per second over the minute.
	Rate float64
	// P50 and P99 are the latency percentiles of the minute's successful
	// requests (0 when there were none), as bucket upper bounds.
	P50, P99 time.Duration
	// PerSecond is the successful requests of each second, oldest first
	// (Seconds values).
	PerSecond []float64
	// P99PerSecond is each second's p99 latency in milliseconds, oldest
	// first; 0 for a second without requests.
	P99PerSecond []float64
}

// Minute returns the summary of the last Seconds complete seconds.
func (r *Ring) Minute() Minute {
	end := r.now().Unix() // excluded: still filling
	m := Minute{PerSecond: make([]float64, Seconds), P99PerSecond: make([]float64, Seconds)}
	var total [nBuckets]uint64
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range Seconds {
		t := end - Seconds + int64(i)
		s := &r.secs[slot(t)]
		if s.unix != t {
			continue
		}
		m.OK += uint64(s.ok)
		m.Failed += uint64(s.failed)
		m.PerSecond[i] = float64(s.ok)
		var h [nBuckets]uint64
		for k, c := range s.hist {
			total[k] += uint64(c)
			h[k] = uint64(c)
		}
		m.P99PerSecond[i] = float64(percentile(&h, uint64(s.ok), 0.99)) / float64(time.Millisecond)
	}
	m.Rate = float64(m.OK) / Seconds
	m.P50 = percentile(&total, m.OK, 0.50)
	m.P99 = percentile(&total, m.OK, 0.99)
	return m
}

// percentile returns the upper bound of the bucket holding the q-quantile
// of n observations, 0 when n is 0.
func percentile(h *[nBuckets]uint64, n uint64, q float64) time.Duration {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for k, c := range h {
		seen += c
		if seen >= rank {
			return bucketBounds[k]
		}
	}
	return bucketBounds[nBuckets-1]
}
