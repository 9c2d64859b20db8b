package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// OverwriteConfig configures RunOverwrite: one volume whose pages are
// rewritten at a steady rate for a wall-clock duration, with wall-clock
// retention, flushes, checkpoints and GC as a leader runs them.
type OverwriteConfig struct {
	// Pages is the number of pages rewritten (all written once first, so
	// the live data is Pages pages throughout). Default 1000.
	Pages int
	// Duration is how long the pages are rewritten. Default 10m.
	Duration time.Duration
	// Rate is page writes per second. Default 20.
	Rate int
	// PagesPerCommit is the pages of one commit (distinct, random).
	// Default 10.
	PagesPerCommit int
	// FlushInterval is the time between flush rounds. Default 250ms.
	FlushInterval time.Duration
	// CheckpointRecords is the checkpoint trigger. Default 8.
	CheckpointRecords int
	// RetainHistory is --retain-history (0: keep everything, nothing is
	// deleted). Default 0; the run uses 1m.
	RetainHistory time.Duration
	// GCInterval and GCGrace are --gc-interval and --gc-grace. Defaults 1s
	// and 1s (the node defaults, 1m and 10m, keep 10 more minutes of
	// history: docs/BENCHMARKS.md).
	GCInterval, GCGrace time.Duration
	// CompactBelow is --compact-below: compact, at checkpoint time, the
	// segments whose needed fraction is below it. 0: no compaction (the
	// CLI's default is the node's, 0.7).
	CompactBelow float64
	// CompactSegmentBytes is --compact-segment-bytes (0: the node default).
	CompactSegmentBytes uint64
	// CompactMaxFraction is --compact-max-fraction (0: the node default).
	CompactMaxFraction float64
	// SampleInterval is how often the bucket is measured. Default 10s.
	SampleInterval time.Duration
	// Seed seeds the page choice. Default 1.
	Seed uint64
}

func (c *OverwriteConfig) defaults() error {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Pages, 1000)
	def(&c.Rate, 20)
	def(&c.PagesPerCommit, 10)
	def(&c.CheckpointRecords, 8)
	defD(&c.Duration, 10*time.Minute)
	defD(&c.FlushInterval, 250*time.Millisecond)
	defD(&c.GCInterval, time.Second)
	defD(&c.GCGrace, time.Second)
	defD(&c.SampleInterval, 10*time.Second)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Pages < 1 || c.Rate < 1 || c.PagesPerCommit < 1 || c.PagesPerCommit > c.Pages || c.CheckpointRecords < 1 ||
		c.Duration <= 0 || c.FlushInterval <= 0 || c.GCInterval <= 0 || c.GCGrace < 0 || c.SampleInterval <= 0 || c.RetainHistory < 0 || c.CompactBelow < 0 || c.CompactBelow > 1 {
		return fmt.Errorf("%w: overwrite bench needs positive pages, rate, durations and 1 <= pages per commit <= pages", ErrInvalidArgument)
	}
	return nil
}

// OverwriteSample is the bucket at one time of the run.
type OverwriteSample struct {
	At          time.Duration
	BucketBytes int64
	Objects     int
	// Deleted is how many objects GC deleted so far.
	Deleted int
	// SegmentBytes, CheckpointBytes (every generation), DeltaBytes and
	// LogBytes split BucketBytes by kind.
	SegmentBytes, CheckpointBytes, DeltaBytes, LogBytes int64
}

// OverwriteResult is RunOverwrite's measurement.
type OverwriteResult struct {
	Config OverwriteConfig
	// LiveBytes are the page bytes of the head snapshot (Pages pages).
	LiveBytes int64
	// WrittenBytes are the page bytes committed (the bucket's size with
	// no overhead and no GC).
	WrittenBytes int64
	Commits      int
	Samples      []OverwriteSample
	// MaxAfterGC is the largest sample taken after GC first deleted
	// something plus one retention period (the steady state); 0 if GC
	// never deleted.
	MaxAfterGC int64
	Deleted    int
	// CompactedSegments and CompactedPages count the compacted segments
	// written and the live page versions moved into them.
	CompactedSegments, CompactedPages uint64
}

// RunOverwrite runs the overwrite workload in process (FSM applied in
// order as a one-node Raft would, in-memory object store, the real
// flusher: FlushOnce, CheckpointOnce and GCOnce on their intervals, on the
// wall clock) and measures the bucket as it goes. At the end it reads every
// page at the head from the bucket alone and checks its version and bytes.
func RunOverwrite(ctx context.Context, cfg OverwriteConfig) (OverwriteResult, error) {
	res := OverwriteResult{Config: cfg}
	if err := cfg.defaults(); err != nil {
		return res, err
	}
	res.Config = cfg
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := objstore.NewMemory()
	f := fsm.New()
	lg := fsm.NewLocalLog(f)
	reader, err := flusher.NewReader(store, flusher.ReaderConfig{Logger: quiet})
	if err != nil {
		return res, err
	}
	fc := flusher.DefaultConfig()
	fc.Interval, fc.OrphanInterval = 0, 0
	fc.CheckpointRecords, fc.CheckpointBytes = cfg.CheckpointRecords, 0
	fc.RetainHistory, fc.GCInterval, fc.GCGrace = cfg.RetainHistory, 0, cfg.GCGrace
	fc.CompactBelow = cfg.CompactBelow
	if cfg.CompactSegmentBytes > 0 {
		fc.CompactSegmentBytes = cfg.CompactSegmentBytes
	}
	if cfg.CompactMaxFraction > 0 {
		fc.CompactMaxFraction = cfg.CompactMaxFraction
	}
	fl, err := flusher.New(fc, f, store, reader, lg, quiet, nil)
	if err != nil {
		return res, err
	}
	vid := volume.MustNewID()
	rng := rand.New(rand.NewPCG(cfg.Seed, 11))
	version := make(map[volume.PageIdx]volume.LSN, cfg.Pages)
	var lsn volume.LSN
	commit := func(idxs []volume.PageIdx) error {
		pages := make([]volume.PageWrite, len(idxs))
		for i, idx := range idxs {
			pages[i] = volume.PageWrite{Idx: idx, Data: historyPage(idx, lsn+1)}
		}
		sorted, err := volume.ValidateCommit(uint32(cfg.Pages), pages, volume.Limits{})
		if err != nil {
			return err
		}
		hash := volume.CommitHash(vid, lsn+1, uint32(cfg.Pages), sorted)
		resp, _ := lg.Propose(ctx, fsm.EncodeCommit(&fsm.CommitCommand{VID: vid, BaseLSN: lsn, PageCount: uint32(cfg.Pages), TimeUnixMs: time.Now().UnixMilli(), Hash: hash, Pages: sorted}))
		if cr, ok := resp.(*fsm.CommitResult); !ok || cr.Err != nil {
			return fmt.Errorf("commit %d: %v", lsn+1, resp)
		}
		lsn++
		for _, idx := range idxs {
			version[idx] = lsn
		}
		res.Commits++
		res.WrittenBytes += int64(len(idxs)) * volume.PageSize
		return nil
	}
	// Write every page once.
	for lo := 1; lo <= cfg.Pages; lo += 100 {
		var idxs []volume.PageIdx
		for i := lo; i < lo+100 && i <= cfg.Pages; i++ {
			idxs = append(idxs, volume.PageIdx(i))
		}
		if err := commit(idxs); err != nil {
			return res, err
		}
	}
	measure := func(at time.Duration) error {
		objs, err := store.List(ctx, "")
		if err != nil {
			return err
		}
		s := OverwriteSample{At: at, Objects: len(objs), Deleted: res.Deleted}
		for _, o := range objs {
			s.BucketBytes += o.Size
			switch {
			case strings.Contains(o.Key, "/segments/"):
				s.SegmentBytes += o.Size
			case strings.Contains(o.Key, "/checkpoints/"):
				s.CheckpointBytes += o.Size
			case strings.Contains(o.Key, "/deltas/"):
				s.DeltaBytes += o.Size
			case strings.Contains(o.Key, "/log/"):
				s.LogBytes += o.Size
			}
		}
		res.Samples = append(res.Samples, s)
		return nil
	}
	start := time.Now()
	var firstDelete time.Duration
	lastGC, lastSample := time.Duration(0), time.Duration(0)
	perRound := float64(cfg.Rate) * cfg.FlushInterval.Seconds()
	var owed float64
	tick := time.NewTicker(cfg.FlushInterval)
	defer tick.Stop()
	for {
		at := time.Since(start)
		if at >= cfg.Duration {
			break
		}
		owed += perRound
		for owed >= float64(cfg.PagesPerCommit) {
			owed -= float64(cfg.PagesPerCommit)
			perm := rng.Perm(cfg.Pages)[:cfg.PagesPerCommit]
			idxs := make([]volume.PageIdx, len(perm))
			for i, p := range perm {
				idxs[i] = volume.PageIdx(p + 1)
			}
			if err := commit(idxs); err != nil {
				return res, err
			}
		}
		if _, err := fl.FlushOnce(ctx, true); err != nil {
			return res, fmt.Errorf("flush: %w", err)
		}
		if _, err := fl.CheckpointOnce(ctx); err != nil {
			return res, fmt.Errorf("checkpoint: %w", err)
		}
		if at-lastGC >= cfg.GCInterval {
			lastGC = at
			n, err := fl.GCOnce(ctx)
			if err != nil {
				return res, fmt.Errorf("gc: %w", err)
			}
			if n > 0 && res.Deleted == 0 {
				firstDelete = at
			}
			res.Deleted += n
		}
		if at-lastSample >= cfg.SampleInterval {
			lastSample = at
			if err := measure(at); err != nil {
				return res, err
			}
			s := res.Samples[len(res.Samples)-1]
			if res.Deleted > 0 && at >= firstDelete+cfg.RetainHistory {
				res.MaxAfterGC = max(res.MaxAfterGC, s.BucketBytes)
			}
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	if err := measure(time.Since(start)); err != nil {
		return res, err
	}
	res.LiveBytes = int64(len(version)) * volume.PageSize
	res.CompactedSegments, res.CompactedPages = fl.Compactions()
	// Every page at the head, from the bucket alone.
	cold, err := flusher.NewReader(store, flusher.ReaderConfig{Logger: quiet})
	if err != nil {
		return res, err
	}
	idxs := make([]volume.PageIdx, 0, cfg.Pages)
	for i := 1; i <= cfg.Pages; i++ {
		idxs = append(idxs, volume.PageIdx(i))
	}
	if _, err := fl.FlushOnce(ctx, true); err != nil {
		return res, fmt.Errorf("final flush: %w", err)
	}
	_, got, err := cold.ReadSnapshot(ctx, vid, 0, idxs)
	if err != nil {
		return res, fmt.Errorf("read the head from the bucket: %w", err)
	}
	for i, p := range got {
		idx := idxs[i]
		if p.LSN != version[idx] || !bytes.Equal(p.Data, historyPage(idx, p.LSN)) {
			return res, fmt.Errorf("page %d at the head: version %d, want %d", idx, p.LSN, version[idx])
		}
	}
	return res, nil
}
