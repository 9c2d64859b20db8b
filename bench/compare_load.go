package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// CDFPercents are the percentiles a CellResult's CDF holds: 0 (the
// minimum), every integer percent, 99.5, 99.9, 99.99 and 100 (the maximum).
// The etcd load generator (bench/peers/etcd/load) reports the same list.
var CDFPercents = func() []float64 {
	ps := []float64{0}
	for p := 1; p <= 99; p++ {
		ps = append(ps, float64(p))
	}
	return append(ps, 99.5, 99.9, 99.99, 100)
}()

// CellResult is one measured cell of a comparison: one target under one
// workload. Its JSON is a superset of `graft bench commit --json`
// (clients, pages, commits, seconds, p50_ms, p90_ms, p99_ms, max_ms,
// mean_ms, ops_per_sec), which is also what the etcd load generator and
// the bare-Raft peer print; the comparison adds the other fields.
type CellResult struct {
	Target string `json:"target,omitempty"` // a Target* constant
	// Clients and Pages are the workload: concurrent closed-loop writers,
	// and 4 KiB pages per commit. For TargetDisk, Clients is the workload's,
	// though the disk is always driven by one writer.
	Clients int `json:"clients"`
	Pages   int `json:"pages"`
	// Rate is the offered commits/s of an open-loop workload, 0 for a
	// closed loop.
	Rate int `json:"rate,omitempty"`
	// PayloadBytes is what one operation carries: the encoded Raft command
	// for graft-shaped commands, the value for etcd, the appended record for
	// the disk.
	PayloadBytes int `json:"payload_bytes,omitempty"`

	Commits   int     `json:"commits"` // measured operations
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"` // measured wall time
	MinMS     float64 `json:"min_ms"`
	MeanMS    float64 `json:"mean_ms"`
	P50MS     float64 `json:"p50_ms"`
	P90MS     float64 `json:"p90_ms"`
	P99MS     float64 `json:"p99_ms"`
	P999MS    float64 `json:"p999_ms"`
	MaxMS     float64 `json:"max_ms"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// CDF holds [percent, ms] pairs at CDFPercents.
	CDF [][2]float64 `json:"cdf_ms,omitempty"`

	// NodeCPUMSPerCommit is the CPU time the three graft nodes used from
	// the start of the warm-up to the end of the measurement, in ms, over
	// the commits of that window (estimated as ops/s x its length): a
	// machine-load-independent cost per commit. graft targets only.
	NodeCPUMSPerCommit float64 `json:"node_cpu_ms_per_commit,omitempty"`
	// Procs are the target's server processes, with their memory at the
	// end of the run (Linux only; empty for in-process targets).
	Procs []ProcMem `json:"procs,omitempty"`
	// Started is when the cell's cluster started; StartupSeconds how long
	// until it served.
	Started        time.Time `json:"started,omitzero"`
	StartupSeconds float64   `json:"startup_seconds,omitempty"`
	// Error, when set, says why the cell has no (or only partial) numbers.
	Error string `json:"error,omitempty"`
}

// ok reports whether c has numbers to compare.
func (c *CellResult) ok() bool { return c != nil && c.Error == "" && c.Commits > 0 }

// ProcMem is one process's memory, from /proc/PID/status.
type ProcMem struct {
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	HWMKiB int64  `json:"vm_hwm_kib"` // peak resident set (VmHWM)
	RSSKiB int64  `json:"vm_rss_kib"` // resident set now (VmRSS)
	// The resident set now, split: anonymous memory (heaps, stacks) and
	// file-backed pages (a log store's mmap, such as bolt's, counts in
	// VmHWM although the kernel may drop those pages at any time).
	AnonKiB int64 `json:"rss_anon_kib"`
	FileKiB int64 `json:"rss_file_kib"`
}

// opFunc is one closed-loop operation by worker, its n-th.
type opFunc func(ctx context.Context, worker int, n uint64) error

// closedLoop runs op from clients workers, each waiting for its op before
// the next, and records the latency of every op started after warmup; no
// op starts after warmup+duration. An op error ends the run and is
// returned (wrapped), and an early end of ctx returns what was measured so
// far with no error.
func closedLoop(ctx context.Context, clients int, warmup, duration time.Duration, op opFunc) (CellResult, error) {
	samples, elapsed, err := runClosedLoop(ctx, clients, warmup, duration, op)
	if err != nil {
		return CellResult{}, err
	}
	return cellFromSamples(clients, samples, elapsed), nil
}

// runClosedLoop is closedLoop's loop: it returns the measured latencies
// and the measured wall time (0 when ctx ended the warm-up).
func runClosedLoop(ctx context.Context, clients int, warmup, duration time.Duration, op opFunc) ([]time.Duration, time.Duration, error) {
	if clients < 1 || duration <= 0 || warmup < 0 {
		return nil, 0, fmt.Errorf("closed loop: clients %d, duration %s, warmup %s: %w", clients, duration, warmup, ErrInvalidArgument)
	}
	rec := NewRecorder()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	var (
		wg   sync.WaitGroup
		errc = make(chan error, clients)
	)
	for w := range clients {
		wg.Go(func() {
			for n := uint64(0); ; n++ {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					return
				}
				if err := op(ctx, w, n); err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("client %d op %d: %w", w, n, err)
						cancel()
					}
					return
				}
				if t0.After(measureFrom) {
					rec.Record(time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, 0, err
	}
	return rec.Samples(), max(time.Since(measureFrom), 0), nil
}

// openLoop runs op from clients workers at rate ops/s in all: worker v's
// k-th op is due at (k*clients+v)/rate seconds after the start, and its
// latency runs from when it was due (a worker still busy with its previous
// op starts late, and that wait counts). Ops due after warmup are
// recorded; none is due after warmup+duration. Errors end the run as in
// closedLoop.
func openLoop(ctx context.Context, clients, rate int, warmup, duration time.Duration, op opFunc) (CellResult, error) {
	if clients < 1 || rate < 1 || duration <= 0 || warmup < 0 {
		return CellResult{}, fmt.Errorf("open loop: clients %d, rate %d, duration %s, warmup %s: %w", clients, rate, duration, warmup, ErrInvalidArgument)
	}
	rec := NewRecorder()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	var (
		wg   sync.WaitGroup
		errc = make(chan error, clients)
	)
	for w := range clients {
		wg.Go(func() {
			t := time.NewTimer(0)
			defer t.Stop()
			for n := uint64(0); ; n++ {
				due := start.Add(time.Duration((float64(n)*float64(clients) + float64(w)) / float64(rate) * float64(time.Second)))
				if due.After(end) {
					return
				}
				t.Reset(time.Until(due))
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
				if err := op(ctx, w, n); err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("client %d op %d: %w", w, n, err)
						cancel()
					}
					return
				}
				if !due.Before(measureFrom) {
					rec.Record(time.Since(due))
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return CellResult{}, err
	}
	// The window ends when the last op due in it completed: behind the
	// offered rate, that is after duration, and ops/s is what was done.
	return cellFromSamples(clients, rec.Samples(), max(time.Since(measureFrom), duration)), nil
}

// cellFromSamples summarises samples (any order; sorted in place) measured
// over elapsed into a CellResult with its CDF.
func cellFromSamples(clients int, samples []time.Duration, elapsed time.Duration) CellResult {
	s := Summarize(samples, 0) // sorts samples
	c := CellResult{
		Clients: clients, Commits: s.Count, Seconds: elapsed.Seconds(),
		MinMS: Millis(s.Min), MeanMS: Millis(s.Mean), P50MS: Millis(s.P50), P90MS: Millis(s.P90),
		P99MS: Millis(s.P99), P999MS: Millis(s.P999), MaxMS: Millis(s.Max),
	}
	if elapsed > 0 {
		c.OpsPerSec = float64(s.Count) / elapsed.Seconds()
	}
	if len(samples) > 0 {
		c.CDF = make([][2]float64, 0, len(CDFPercents))
		for _, p := range CDFPercents {
			c.CDF = append(c.CDF, [2]float64{p, Millis(Percentile(samples, p))})
		}
	}
	return c
}
