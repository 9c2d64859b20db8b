package bench

import (
	"context"
	"encoding/binary"
	"fmt"
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
	samples, elapsed, err := runClosedLoop(ctx, cfg.Clients, cfg.Warmup, cfg.Duration, commitOp([]*client.Client{cfg.Client}, cfg.Clients, cfg.Pages))
	if err != nil {
		return CommitResult{}, err
	}
	sum := Summarize(samples, 0)
	var opsPerSec float64
	if elapsed > 0 {
		opsPerSec = float64(sum.Count) / elapsed.Seconds()
	}
	return CommitResult{Clients: cfg.Clients, Pages: cfg.Pages, Elapsed: elapsed, Latency: sum, OpsPerSec: opsPerSec}, nil
}

// commitOp returns the closed-loop operation of a commit load: worker w
// commits pages pages to its own new volume, each on the head its last
// commit returned, with its worker and sequence number in the first bytes.
func commitOp(cls []*client.Client, clients, pages int) opFunc {
	type worker struct {
		vid   volume.ID
		base  volume.LSN
		data  []byte
		pages []volume.PageWrite
	}
	workers := make([]worker, clients)
	for i := range workers {
		wk := &workers[i]
		wk.vid = volume.MustNewID()
		wk.data = make([]byte, pages*volume.PageSize)
		wk.pages = make([]volume.PageWrite, pages)
		for j := range wk.pages {
			wk.pages[j] = volume.PageWrite{Idx: volume.PageIdx(j + 1), Data: wk.data[j*volume.PageSize : (j+1)*volume.PageSize]}
		}
	}
	return func(ctx context.Context, w int, n uint64) error {
		wk := &workers[w]
		binary.BigEndian.PutUint64(wk.data, uint64(w)<<40|n)
		snap, err := cls[w%len(cls)].Commit(ctx, wk.vid, wk.base, uint32(pages), wk.pages)
		if err != nil {
			return fmt.Errorf("commit on base %d: %w", wk.base, err)
		}
		wk.base = snap.LSN
		return nil
	}
}
