package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

// CommitConfig configures a commit load run. Start from
// DefaultCommitConfig.
type CommitConfig struct {
	// Client talks to the cluster under test. Required; no default.
	Client *client.Client
	// Clients is the number of concurrent committers, each on its own
	// volume, each waiting for its ack before the next commit (closed
	// loop). Must be >= 1. Default 1.
	Clients int
	// Duration is how long to measure, after Warmup. Must be > 0.
	// Default 10s.
	Duration time.Duration
	// Warmup runs before measuring and is not recorded; 0 disables it.
	// Default 1s.
	Warmup time.Duration
	// Pages is the pages per commit (4 KiB each). Must be >= 1. Default 1.
	Pages int
}

// DefaultCommitConfig returns a CommitConfig with every default set; the
// caller sets Client.
func DefaultCommitConfig() CommitConfig {
	return CommitConfig{Clients: 1, Duration: 10 * time.Second, Warmup: time.Second, Pages: 1}
}

// Validate returns ErrNoClient without a Client, and an error wrapping
// ErrInvalidArgument for the first out-of-range field.
func (c CommitConfig) Validate() error {
	switch {
	case c.Client == nil:
		return ErrNoClient
	case c.Clients < 1:
		return fmt.Errorf("validate commit config: clients %d < 1: %w", c.Clients, ErrInvalidArgument)
	case c.Duration <= 0:
		return fmt.Errorf("validate commit config: duration %s <= 0: %w", c.Duration, ErrInvalidArgument)
	case c.Warmup < 0:
		return fmt.Errorf("validate commit config: warmup %s < 0: %w", c.Warmup, ErrInvalidArgument)
	case c.Pages < 1:
		return fmt.Errorf("validate commit config: pages %d < 1: %w", c.Pages, ErrInvalidArgument)
	}
	return nil
}

// CommitResult is what a commit run measured.
type CommitResult struct {
	Clients   int
	Pages     int
	Elapsed   time.Duration
	Latency   Summary
	OpsPerSec float64
}

// RunCommit drives closed-loop commits and records each ack's latency,
// counting only commits started after the warm-up. It returns cfg.Validate's
// error for an invalid cfg. A commit error ends the run and is returned: the
// measurement would not mean much otherwise. When ctx ends early, it returns
// what was measured so far and no error.
func RunCommit(ctx context.Context, cfg CommitConfig) (CommitResult, error) {
	if err := cfg.Validate(); err != nil {
		return CommitResult{}, err
	}
	rec := NewRecorder()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Clients)
	for w := range cfg.Clients {
		wg.Go(func() {
			vid := volume.MustNewID()
			var base volume.LSN
			data := make([]byte, cfg.Pages*volume.PageSize)
			pages := make([]volume.PageWrite, cfg.Pages)
			for i := range pages {
				pages[i] = volume.PageWrite{Idx: volume.PageIdx(i + 1), Data: data[i*volume.PageSize : (i+1)*volume.PageSize]}
			}
			for n := uint64(0); ; n++ {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					return
				}
				binary.BigEndian.PutUint64(data, uint64(w)<<40|n)
				snap, err := cfg.Client.Commit(ctx, vid, base, uint32(cfg.Pages), pages)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("client %d commit on base %d: %w", w, base, err)
						cancel()
					}
					return
				}
				base = snap.LSN
				if t0.After(measureFrom) {
					rec.Record(time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return CommitResult{}, err
	}
	sum := rec.Summary()
	elapsed := max(time.Since(measureFrom), 0) // 0 when ctx ended the warm-up
	var opsPerSec float64
	if elapsed > 0 {
		opsPerSec = float64(sum.Count) / elapsed.Seconds()
	}
	return CommitResult{
		Clients:   cfg.Clients,
		Pages:     cfg.Pages,
		Elapsed:   elapsed,
		Latency:   sum,
		OpsPerSec: opsPerSec,
	}, nil
}
