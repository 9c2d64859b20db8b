package flusher

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Config tunes the flusher. Zero durations disable the matching loop, so
// tests can step rounds with FlushOnce.
type Config struct {
	// Interval is how often the leader checks the flush triggers.
	// Default 100ms; 0 disables the loop (rounds run only on request).
	Interval time.Duration
	// MaxAge flushes a volume once its oldest unflushed commit is this old.
	// Default 1s.
	MaxAge time.Duration
	// TargetBytes flushes once this many page bytes are buffered across
	// all volumes. Default 8 MiB.
	TargetBytes uint64
	// MaxRoundBytes caps the page bytes one volume puts into one round (one
	// segment); the rest waits for the next round. Default 32 MiB.
	MaxRoundBytes uint64
	// MaxVolumesPerRound caps the volumes in one round, oldest first.
	// Default 1000.
	MaxVolumesPerRound int
	// Uploads bounds the concurrent object-store writes of a round.
	// Default 8.
	Uploads int
	// RetryMin and RetryMax bound the backoff after a failed round.
	// Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// OrphanInterval is how often the leader collects orphan segments.
	// Default 1h; 0 disables it.
	OrphanInterval time.Duration
	// OrphanGrace is how old an unreferenced segment must be before it is
	// collected, so an upload of a round in flight is never taken.
	// Default 1h.
	OrphanGrace time.Duration
	// RoundTimeout bounds one flush round (FlushOnce: planning, uploads,
	// proposals) and one orphan collection, on top of the object store's
	// per-attempt deadlines; a round past it fails and is retried, and
	// rounds are idempotent. It must exceed the time the largest round
	// takes at the store's slowest accepted throughput. Default 5m; 0: no
	// round deadline.
	RoundTimeout time.Duration
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Interval:           100 * time.Millisecond,
		MaxAge:             time.Second,
		TargetBytes:        8 << 20,
		MaxRoundBytes:      32 << 20,
		MaxVolumesPerRound: 1000,
		Uploads:            8,
		RetryMin:           100 * time.Millisecond,
		RetryMax:           5 * time.Second,
		OrphanInterval:     time.Hour,
		OrphanGrace:        time.Hour,
		RoundTimeout:       5 * time.Minute,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval < 0 || c.MaxAge < 0 || c.RetryMin < 0 || c.RetryMax < c.RetryMin || c.OrphanInterval < 0 || c.OrphanGrace < 0 || c.RoundTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative, and retry max must be at least retry min"))
	}
	if c.MaxRoundBytes < volume.PageSize {
		errs = append(errs, fmt.Errorf("max round bytes %d below one page", c.MaxRoundBytes))
	}
	if c.MaxVolumesPerRound <= 0 || c.Uploads <= 0 {
		errs = append(errs, errors.New("max volumes per round and uploads must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flusher config: %w", err)
	}
	return nil
}

// Proposer proposes a command through Raft on the leader and returns the
// FSM's response once it is committed and applied.
type Proposer interface {
	Propose(ctx context.Context, cmd []byte) (any, error)
}

// Flusher moves buffered commits from the FSM into the object store. Only
// the leader runs it. A round is planned, then the plan is committed
// through Raft, then segments and log records are written, then the
// completion is committed through Raft, which trims the buffer on every
// replica. A leader that finds an open plan in the state finishes exactly
// that plan first, so rounds never leave gaps or duplicates in the bucket.
type Flusher struct {
	cfg    Config
	fsm    *fsm.FSM
	store  objstore.Store
	reader *Reader
	prop   Proposer
	log    *slog.Logger
	m      *flushMetrics
	now    func() time.Time

	round sync.Mutex // one round at a time
	kick  chan struct{}
}

// New returns a flusher writing to store; reader (over the same store)
// serves orphan collection. reg may be nil.
func New(cfg Config, f *fsm.FSM, store objstore.Store, reader *Reader, prop Proposer, logger *slog.Logger, reg prometheus.Registerer) (*Flusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Flusher{
		cfg: cfg, fsm: f, store: store, reader: reader, prop: prop, log: logger,
		m: newFlushMetrics(reg), now: time.Now, kick: make(chan struct{}, 1),
	}, nil
}

// Kick asks the loop to check the triggers now (for example after a commit
// that filled the buffer past the target).
func (f *Flusher) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run flushes until ctx ends: the caller starts it when this node becomes
// leader and cancels ctx when it stops being leader. Failed rounds are
// retried with backoff; an open round is always finished first.
func (f *Flusher) Run(ctx context.Context) {
	if f.cfg.Interval <= 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(f.cfg.Interval)
	defer tick.Stop()
	var orphans <-chan time.Time
	if f.cfg.OrphanInterval > 0 {
		t := time.NewTicker(f.cfg.OrphanInterval)
		defer t.Stop()
		orphans = t.C
	}
	backoff := time.Duration(0)
	for {
		ran, err := f.FlushOnce(ctx, false)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			backoff = min(max(2*backoff, f.cfg.RetryMin), f.cfg.RetryMax)
			f.log.Warn("flush round failed; retrying", "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			continue
		case ran:
			backoff = 0
			continue // more may be waiting (rounds are capped)
		}
		backoff = 0
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.kick:
		case <-orphans:
			octx, cancel := f.roundContext(ctx)
			n, err := f.CollectOrphans(octx)
			cancel()
			if err != nil {
				f.log.Warn("collect orphan segments", "err", err)
			} else if n > 0 {
				f.log.Info("collected orphan segments", "count", n)
			}
		}
	}
}

// roundContext bounds one round by Config.RoundTimeout.
func (f *Flusher) roundContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.cfg.RoundTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.cfg.RoundTimeout)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// FlushOnce finishes the open round if there is one, else plans and runs a
// new round if a trigger fired (or force is set and anything is buffered).
// It reports whether a round ran.
func (f *Flusher) FlushOnce(ctx context.Context, force bool) (bool, error) {
	f.round.Lock()
	defer f.round.Unlock()
	ctx, cancel := f.roundContext(ctx)
	defer cancel()
	if p := f.fsm.Plan(); p != nil {
		return true, f.execute(ctx, p)
	}
	p := f.plan(force)
	if p == nil {
		return false, nil
	}
	resp, err := f.prop.Propose(ctx, fsm.EncodeFlushPlan(p))
	if err != nil {
		return false, fmt.Errorf("propose flush plan: %w", err)
	}
	res, ok := resp.(*fsm.AdminResult)
	if !ok {
		return false, fmt.Errorf("propose flush plan: unexpected response %T", resp)
	}
	if res.Err != nil {
		// Another leader's round may have opened meanwhile; the next call
		// resumes it.
		return false, fmt.Errorf("propose flush plan: %w", res.Err)
	}
	p.Round = res.Round
	return true, f.execute(ctx, p)
}

// FlushAll runs rounds until every volume's flushed watermark reaches the
// head it had when FlushAll was called: what was acknowledged before the
// call is then durable in the object store.
func (f *Flusher) FlushAll(ctx context.Context) error {
	target := map[volume.ID]volume.LSN{}
	for _, c := range f.fsm.FlushCandidates() {
		target[c.VID] = c.Head
	}
	for {
		pending := false
		for vid, head := range target {
			if f.fsm.History(vid).Flushed < head {
				pending = true
				break
			}
		}
		if !pending {
			return nil
		}
		ran, err := f.FlushOnce(ctx, true)
		if err != nil {
			return err
		}
		if !ran && !sleep(ctx, 10*time.Millisecond) { // raced with a trim; look again
			return ctx.Err()
		}
	}
}

// plan picks the volumes and ranges of a new round, or nil if no trigger
// fired.
func (f *Flusher) plan(force bool) *fsm.FlushPlan {
	cands := f.fsm.FlushCandidates()
	if len(cands) == 0 {
		return nil
	}
	now := f.now()
	var total uint64
	oldest := cands[0].OldestUnixMs
	for _, c := range cands {
		total += c.Bytes
		oldest = min(oldest, c.OldestUnixMs)
	}
	age := now.Sub(time.UnixMilli(oldest))
	if !force && total < f.cfg.TargetBytes && age < f.cfg.MaxAge {
		return nil
	}
	// Oldest first, so no volume starves when rounds are capped.
	slices.SortStableFunc(cands, func(a, b fsm.FlushCandidate) int { return cmp.Compare(a.OldestUnixMs, b.OldestUnixMs) })
	if len(cands) > f.cfg.MaxVolumesPerRound {
		cands = cands[:f.cfg.MaxVolumesPerRound]
	}
	p := &fsm.FlushPlan{TimeUnixMs: now.UnixMilli()}
	for _, c := range cands {
		commits, err := f.fsm.Buffered(c.VID, c.Flushed+1, c.Head)
		if err != nil {
			continue // trimmed meanwhile; next round
		}
		pv := fsm.PlanVolume{VID: c.VID, From: c.Flushed + 1, To: c.Flushed}
		var bytes uint64
		pages := false
		for _, bc := range commits {
			size := uint64(len(bc.Pages)) * volume.PageSize
			if pv.To >= pv.From && bytes+size > f.cfg.MaxRoundBytes {
				break
			}
			bytes += size
			pages = pages || len(bc.Pages) > 0
			pv.To = bc.LSN
		}
		if pages {
			sid, err := segment.NewID(now, rand.Reader)
			if err != nil {
				f.log.Error("mint segment id", "err", err)
				return nil
			}
			pv.Segment = sid
		}
		p.Volumes = append(p.Volumes, pv)
	}
	if len(p.Volumes) == 0 {
		return nil
	}
	slices.SortFunc(p.Volumes, func(a, b fsm.PlanVolume) int { return bytes.Compare(a.VID[:], b.VID[:]) })
	return p
}

// execute writes the round's segments and log records, then commits its
// completion. It is idempotent: segments are rewritten with the same bytes
// under the same key, and a log record already present with the same
// commits counts as written.
func (f *Flusher) execute(ctx context.Context, p *fsm.FlushPlan) error {
	start := f.now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Uploads)
	var mu sync.Mutex
	var written uint64
	for _, pv := range p.Volumes {
		g.Go(func() error {
			n, err := f.flushVolume(gctx, pv)
			mu.Lock()
			written += n
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		f.m.errors.Inc()
		return fmt.Errorf("flush round %d: %w", p.Round, err)
	}
	resp, err := f.prop.Propose(ctx, fsm.EncodeFlushDone(p.Round))
	if err != nil {
		f.m.errors.Inc()
		return fmt.Errorf("propose end of flush round %d: %w", p.Round, err)
	}
	if res, ok := resp.(*fsm.AdminResult); !ok || res.Err != nil {
		f.m.errors.Inc()
		return fmt.Errorf("end of flush round %d: %v", p.Round, resp)
	}
	f.m.rounds.Inc()
	f.m.volumes.Add(float64(len(p.Volumes)))
	for _, pv := range p.Volumes {
		f.m.commits.Add(float64(pv.To - pv.From + 1))
	}
	f.m.bytes.Add(float64(written))
	f.m.seconds.Observe(f.now().Sub(start).Seconds())
	f.log.Debug("flush round done", "round", p.Round, "volumes", len(p.Volumes), "bytes", written, "took", f.now().Sub(start))
	return nil
}

// flushVolume writes one volume's segment and log record.
func (f *Flusher) flushVolume(ctx context.Context, pv fsm.PlanVolume) (uint64, error) {
	commits, err := f.fsm.Buffered(pv.VID, pv.From, pv.To)
	if err != nil {
		return 0, fmt.Errorf("volume %s: %w", pv.VID, err)
	}
	rec := segment.Record{VID: pv.VID, From: pv.From, To: pv.To, Segment: segment.ID(pv.Segment), Commits: make([]segment.RecordCommit, len(commits))}
	var written uint64
	var b *segment.Builder
	for i, c := range commits {
		rec.Commits[i] = segment.RecordCommit{LSN: c.LSN, PageCount: c.PageCount, TimeUnixMs: c.TimeUnixMs, Hash: c.Hash, Graft: c.Graft}
		if len(c.Pages) > 0 {
			if b == nil {
				b = segment.NewBuilder(pv.VID)
			}
			if err := b.AddCommit(c.LSN, c.Pages); err != nil {
				return 0, fmt.Errorf("build segment of %s: %w", pv.VID, err)
			}
		}
	}
	if (b != nil) != (rec.Segment != segment.ID{}) {
		return 0, fmt.Errorf("%w: plan for %s [%d, %d] has segment %s but the range wrote pages: %v", ErrLayout, pv.VID, pv.From, pv.To, rec.Segment, b != nil)
	}
	if b != nil {
		var buf bytes.Buffer
		buf.Grow(int(b.Size()))
		if _, err := b.WriteTo(&buf); err != nil {
			return 0, fmt.Errorf("encode segment of %s: %w", pv.VID, err)
		}
		t := f.now()
		err := f.store.Put(ctx, segment.SegmentKey(pv.VID, rec.Segment), buf.Bytes())
		f.m.observePut("segment", t, err)
		if err != nil {
			return 0, &StoreError{Op: fmt.Sprintf("upload segment %s of %s", rec.Segment, pv.VID), Err: err}
		}
		written += uint64(buf.Len())
	}
	data, err := rec.AppendBinary(nil)
	if err != nil {
		return 0, fmt.Errorf("encode log record of %s: %w", pv.VID, err)
	}
	key := segment.LogKey(pv.VID, pv.From)
	t := f.now()
	err = f.store.PutIfAbsent(ctx, key, data)
	f.m.observePut("log", t, err)
	switch {
	case err == nil:
		return written + uint64(len(data)), nil
	case !errors.Is(err, objstore.ErrExists):
		return 0, &StoreError{Op: "write log record " + key, Err: err}
	}
	// Written before: by this round's earlier attempt (its response lost),
	// or by a previous leader running the same round. Same commits: done.
	stored, err := f.store.Get(ctx, key)
	if err != nil {
		return 0, &StoreError{Op: "read back log record " + key, Err: err}
	}
	have, err := segment.DecodeRecord(stored)
	if err != nil {
		f.m.conflicts.Inc()
		return 0, fmt.Errorf("%w: %s holds an undecodable record: %w", ErrConflict, key, err)
	}
	if err := sameCommits(&have, &rec); err != nil {
		f.m.conflicts.Inc()
		f.log.Error("ALARM: log record in the object store conflicts with the cluster's commits; the buffer will not be trimmed",
			"key", key, "err", err)
		return 0, fmt.Errorf("%w: %s: %w", ErrConflict, key, err)
	}
	if have.Segment != rec.Segment && rec.Segment != (segment.ID{}) {
		// The stored record points at another upload of the same pages;
		// ours is an orphan.
		if err := f.store.Delete(ctx, segment.SegmentKey(pv.VID, rec.Segment)); err != nil {
			f.log.Warn("delete orphan segment", "segment", rec.Segment, "err", err)
		}
	}
	return written, nil
}

// sameCommits checks that two records hold the same commits.
func sameCommits(a, b *segment.Record) error {
	if a.VID != b.VID || a.From != b.From || a.To != b.To || len(a.Commits) != len(b.Commits) {
		return fmt.Errorf("stored record covers %s [%d, %d], ours %s [%d, %d]", a.VID, a.From, a.To, b.VID, b.From, b.To)
	}
	for i := range a.Commits {
		if a.Commits[i].Hash != b.Commits[i].Hash {
			return fmt.Errorf("lsn %d: stored hash %s, ours %s", a.Commits[i].LSN, a.Commits[i].Hash, b.Commits[i].Hash)
		}
	}
	return nil
}
