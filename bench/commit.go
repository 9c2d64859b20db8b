package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

// CommitConfig configures a commit load run.
type CommitConfig struct {
	// Client talks to the cluster under test. Required.
	Client *client.Client
	// Clients is the number of concurrent committers, each on its own
	// volume, each waiting for its ack before the next commit (closed
	// loop). Default 1.
	Clients int
	// Duration is how long to measure, after Warmup. Default 10s.
	Duration time.Duration
	// Warmup runs before measuring and is not recorded. Default 1s.
	Warmup time.Duration
	// Pages is the pages per commit (4 KiB each). Default 1.
	Pages int
}

// CommitResult is what a commit run measured.
type CommitResult struct {
	Clients   int
	Pages     int
	Elapsed   time.Duration
	Latency   Summary
	OpsPerSec float64
}

// RunCommit drives closed-loop commits and records each ack's latency.
// An error ends the run: the measurement would not mean much otherwise.
func RunCommit(ctx context.Context, cfg CommitConfig) (CommitResult, error) {
	if cfg.Client == nil {
		return CommitResult{}, errors.New("bench: no client")
	}
	cfg.Clients = max(cfg.Clients, 1)
	cfg.Pages = max(cfg.Pages, 1)
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = 0
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
		wg.Add(1)
		go func() {
			defer wg.Done()
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
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return CommitResult{}, err
	}
	sum := rec.Summary()
	elapsed := time.Since(measureFrom)
	return CommitResult{
		Clients:   cfg.Clients,
		Pages:     cfg.Pages,
		Elapsed:   elapsed,
		Latency:   sum,
		OpsPerSec: float64(sum.Count) / elapsed.Seconds(),
	}, nil
}
