package objstore

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Hedged GETs.
//
// A small GET whose first attempt has no response byte after the hedge
// delay (a quantile of recent GET first-byte latencies, clamped to
// [HedgeAfter, HedgeMax]) gets a second, identical request on another
// connection. Whichever of the two shows a response byte (or finishes)
// first is the answer; the other is cancelled and waited for. A stalled
// connection then costs a read the hedge delay, not a first-byte timeout.

const (
	// latencySamples is how many recent first-byte latencies the hedge
	// delay is computed from.
	latencySamples = 128
	// minLatencySamples is how many it takes before the quantile is
	// trusted; until then the delay is HedgeMax.
	minLatencySamples = 16
)

// latencies keeps recent first-byte latencies and their quantile.
type latencies struct {
	q float64

	mu       sync.Mutex
	ring     [latencySamples]time.Duration
	n        int           // samples ever added
	current  time.Duration // the quantile of the samples when n was computed
	computed int
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.n%latencySamples] = d
	l.n++
}

// quantile returns the latency quantile, or false with too few samples.
// It sorts the samples (a few microseconds) when new ones came in.
func (l *latencies) quantile() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n < minLatencySamples {
		return 0, false
	}
	if l.computed != l.n {
		s := slices.Clone(l.ring[:min(l.n, latencySamples)])
		slices.Sort(s)
		i := int(math.Ceil(l.q*float64(len(s)))) - 1
		l.current, l.computed = s[max(0, min(i, len(s)-1))], l.n
	}
	return l.current, true
}

// hedgeDelay is how long a small GET waits for a first byte before it is
// hedged.
func (s *s3Store) hedgeDelay() time.Duration {
	q, ok := s.latency.quantile()
	if !ok {
		return s.cfg.HedgeMax
	}
	return min(max(q, s.cfg.HedgeAfter), s.cfg.HedgeMax)
}

// hedged runs get as operation op, hedged when hedging is on.
func hedged[T any](ctx context.Context, s *s3Store, op string, get func(context.Context) (T, error)) (T, error) {
	if s.cfg.HedgeAfter <= 0 {
		return get(withCall(ctx, &callState{op: op}))
	}
	type result struct {
		v   T
		err error
	}
	type leg struct {
		first  chan struct{}
		res    chan result
		cancel context.CancelFunc
	}
	launch := func() *leg {
		cs := &callState{op: op, first: make(chan struct{})}
		lctx, cancel := context.WithCancel(ctx)
		l := &leg{first: cs.first, res: make(chan result, 1), cancel: cancel}
		go func() {
			v, err := get(withCall(lctx, cs))
			l.res <- result{v, err}
		}()
		return l
	}
	a := launch()
	defer a.cancel()
	t := time.NewTimer(s.hedgeDelay())
	defer t.Stop()
	select {
	case r := <-a.res:
		return r.v, r.err
	case <-a.first:
		r := <-a.res
		return r.v, r.err
	case <-ctx.Done():
		r := <-a.res
		return r.v, r.err
	case <-t.C:
	}
	s.metrics.hedges.WithLabelValues(op).Inc()
	b := launch()
	defer b.cancel()
	var win, lose *leg
	var done *result
	select {
	case <-a.first:
		win, lose = a, b
	case r := <-a.res:
		win, lose, done = a, b, &r
	case <-b.first:
		win, lose = b, a
	case r := <-b.res:
		win, lose, done = b, a, &r
	}
	lose.cancel()
	<-lose.res // cancelled: returns at once
	if done == nil {
		r := <-win.res
		done = &r
	}
	if win == b {
		s.metrics.hedgeWins.WithLabelValues(op).Inc()
	}
	return done.v, done.err
}
