package prefetch

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/graft-cluster/graft/volume"
)

// Errors returned by this package.
var (
	// ErrInvalidConfig means a LeapConfig failed Validate.
	ErrInvalidConfig = errors.New("prefetch: invalid config")
)

// Limits of LeapConfig.
const (
	// MaxHistory is the largest LeapConfig.History.
	MaxHistory = 1024
	// MaxLookaheadLimit is the largest LeapConfig.MaxLookahead.
	MaxLookaheadLimit = 4096
)

// LeapConfig configures a Leap oracle.
type LeapConfig struct {
	// History is how many recent page deltas the trend is found in.
	// Default 32 (as in Leap and Graft); 1..MaxHistory.
	History int
	// MaxLookahead caps the prefetch window, in pages. Default 64;
	// 1..MaxLookaheadLimit. The replica's own cap (client.Config.MaxPrefetch,
	// passed to Predict as max) applies as well.
	MaxLookahead int
}

// DefaultLeapConfig returns the defaults: a history of 32 deltas and a
// lookahead of at most 64 pages.
func DefaultLeapConfig() LeapConfig {
	return LeapConfig{History: 32, MaxLookahead: 64}
}

// Validate reports a config a Leap cannot run with.
func (c LeapConfig) Validate() error {
	if c.History < 1 || c.History > MaxHistory {
		return fmt.Errorf("%w: History %d not in [1, %d]", ErrInvalidConfig, c.History, MaxHistory)
	}
	if c.MaxLookahead < 1 || c.MaxLookahead > MaxLookaheadLimit {
		return fmt.Errorf("%w: MaxLookahead %d not in [1, %d]", ErrInvalidConfig, c.MaxLookahead, MaxLookaheadLimit)
	}
	return nil
}

// nSplit is Leap's N_split: the trend search starts in the most recent
// History/nSplit deltas and doubles the window until a strict majority is
// found or the whole history was tried.
const nSplit = 4

// Leap predicts reads the way "Effectively Prefetching Remote Memory with
// Leap" (Al Maruf and Chowdhury, USENIX ATC'20) does, and Graft's
// LeapOracle after it:
//
//   - the trend is the strict majority (Boyer-Moore vote) of the most recent
//     page deltas, searched in windows of History/4, History/2, ... History;
//   - on a miss, the prefetch window is the number of pages of the previous
//     prediction that were read since (hits) plus one, rounded up to a power
//     of two, capped at MaxLookahead: it doubles while prefetches get read.
//     With no hits it is 1 if the miss follows the trend (or is the next
//     page when there is no trend), else 0; and it never drops below half
//     the previous window, so it shrinks smoothly;
//   - the window is filled along the trend, or, with no trend, with the
//     neighbours of the missed page (idx+1, idx-1, idx+2, ...).
//
// A re-read of the page read last is not a new access and leaves the
// history alone. The zero Leap is not usable; use NewLeap.
type Leap struct {
	cfg LeapConfig

	mu sync.Mutex
	// last is the last page observed; 0 before the first read.
	last volume.PageIdx
	// hist is a ring of page deltas; hist[(head-1-i) mod len] is the
	// i-th most recent, n of them are valid.
	hist []int64
	head int
	n    int
	// pred holds the last prediction's pages not yet read; predLen is its
	// size when it was made, hits how many of them were read since.
	pred    map[volume.PageIdx]struct{}
	predLen int
	hits    int
}

// NewLeap returns a Leap oracle. A cfg that fails Validate is replaced
// field by field with the defaults, so NewLeap never fails; validate first
// to reject it instead.
func NewLeap(cfg LeapConfig) *Leap {
	def := DefaultLeapConfig()
	if cfg.History < 1 || cfg.History > MaxHistory {
		cfg.History = def.History
	}
	if cfg.MaxLookahead < 1 || cfg.MaxLookahead > MaxLookaheadLimit {
		cfg.MaxLookahead = def.MaxLookahead
	}
	return &Leap{
		cfg:  cfg,
		hist: make([]int64, cfg.History),
		pred: make(map[volume.PageIdx]struct{}),
	}
}

// Config returns the config the oracle runs with (after defaults).
func (l *Leap) Config() LeapConfig { return l.cfg }

// Observe records a read of idx; hit reports that the page was local. A hit
// on a page of the last prediction counts toward the next window.
func (l *Leap) Observe(idx volume.PageIdx, hit bool) {
	if !idx.Valid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observe(idx, hit)
}

func (l *Leap) observe(idx volume.PageIdx, hit bool) {
	if idx == l.last {
		return
	}
	if _, ok := l.pred[idx]; ok {
		delete(l.pred, idx)
		if hit {
			l.hits++
		}
	}
	if l.last != 0 {
		l.push(int64(idx) - int64(l.last))
	}
	l.last = idx
}

func (l *Leap) push(d int64) {
	l.hist[l.head] = d
	l.head = (l.head + 1) % len(l.hist)
	if l.n < len(l.hist) {
		l.n++
	}
}

// delta returns the i-th most recent delta (0 = newest); i < l.n.
func (l *Leap) delta(i int) int64 {
	return l.hist[(l.head-1-i+2*len(l.hist))%len(l.hist)]
}

// Predict is called on a miss of idx, after Observe(idx, false), and
// returns up to limit pages to fetch with it, best first. If idx was not the
// last page observed it is observed (as a miss) first.
func (l *Leap) Predict(idx volume.PageIdx, limit int) []volume.PageIdx {
	if !idx.Valid() || limit <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if idx != l.last {
		l.observe(idx, false)
	}

	// The trend before this read decides whether the read follows it; the
	// trend including it decides where to prefetch.
	var d0 int64
	if l.n > 0 {
		d0 = l.delta(0)
	}
	var window int
	if l.hits == 0 {
		want := int64(1)
		if t, ok := l.trend(1); ok {
			want = t
		}
		if l.n > 0 && d0 == want {
			window = 1
		}
	} else {
		window = nextPow2(l.hits + 1)
	}
	window = min(window, l.cfg.MaxLookahead)
	window = max(window, l.predLen/2)

	clear(l.pred)
	l.hits = 0
	l.predLen = 0
	if window == 0 {
		return nil
	}
	n := min(window, limit)
	out := make([]volume.PageIdx, 0, n)
	if t, ok := l.trend(0); ok && t != 0 {
		cur := int64(idx)
		for len(out) < n {
			cur += t
			if cur < 1 || cur > volume.MaxPageIdx {
				break
			}
			out = append(out, volume.PageIdx(cur))
		}
	} else {
		out = neighbours(out, idx, n)
	}
	for _, p := range out {
		l.pred[p] = struct{}{}
	}
	l.predLen = window
	return out
}

// neighbours appends up to n pages around idx, nearest first, up before down.
func neighbours(out []volume.PageIdx, idx volume.PageIdx, n int) []volume.PageIdx {
	c := int64(idx)
	for i := int64(1); len(out) < n; i++ {
		up, down := c+i, c-i
		upOK, downOK := up <= volume.MaxPageIdx, down >= 1
		if !upOK && !downOK {
			break
		}
		if upOK {
			out = append(out, volume.PageIdx(up))
		}
		if downOK && len(out) < n {
			out = append(out, volume.PageIdx(down))
		}
	}
	return out
}

// trend finds the strict majority delta among the history without its skip
// most recent entries: first in the newest (len/nSplit) deltas, then in
// windows doubling up to the whole history.
func (l *Leap) trend(skip int) (int64, bool) {
	size := l.n - skip
	if size <= 0 {
		return 0, false
	}
	for w := max(size/nSplit, 1); ; w *= 2 {
		w = min(w, size)
		if t, ok := l.majority(skip, w); ok {
			return t, true
		}
		if w == size {
			return 0, false
		}
	}
}

// majority is the Boyer-Moore strict majority vote over the deltas
// skip..skip+w-1 (newest first): a value that occurs more than w/2 times.
func (l *Leap) majority(skip, w int) (int64, bool) {
	var cand int64
	count := 0
	for i := skip; i < skip+w; i++ {
		d := l.delta(i)
		switch {
		case count == 0:
			cand, count = d, 1
		case d == cand:
			count++
		default:
			count--
		}
	}
	occ := 0
	for i := skip; i < skip+w; i++ {
		if l.delta(i) == cand {
			occ++
		}
	}
	return cand, occ > w/2
}

// nextPow2 returns the smallest power of two >= n (n >= 1).
func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// None is an oracle that never predicts: every miss fetches one page.
type None struct{}

// Observe does nothing.
func (None) Observe(volume.PageIdx, bool) {}

// Predict returns nil.
func (None) Predict(volume.PageIdx, int) []volume.PageIdx { return nil }
