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
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
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
	// MaxAge flushes once the oldest unflushed commit has waited this long,
	// measured on this leader's monotonic clock from when it first saw the
	// commit (or became leader), never from the commit's timestamp, which
	// another node's clock minted. Default 1s.
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
	// CheckpointRecords writes a volume's checkpoint once this many log
	// records follow its newest one. Default 64; 0: no count trigger.
	CheckpointRecords int
	// CheckpointBytes writes a volume's checkpoint once this many page bytes
	// were flushed after its newest one. Default 256 MiB; 0: no byte
	// trigger. With both triggers 0 no checkpoint is written (the layout
	// before checkpoints).
	CheckpointBytes uint64
	// RetainLSNs keeps the last RetainLSNs snapshots of each volume
	// readable (its horizon follows head - RetainLSNs, at checkpoint
	// granularity for deletion). Default 0: keep everything.
	RetainLSNs uint64
	// RetainHistory keeps each volume's snapshots of the last RetainHistory
	// readable (its horizon is the newest checkpoint written before now -
	// RetainHistory). Default 0: keep everything. With both set, the one
	// keeping more wins.
	RetainHistory time.Duration
	// GCInterval is how often the leader runs a GC step. Default 1m; 0
	// disables the loop (GCOnce still works).
	GCInterval time.Duration
	// GCGrace is how long a committed GC round waits before deleting, so
	// reads and edges that started before the horizon moved finish.
	// Default 10m.
	GCGrace time.Duration
	// CheckpointDeltas writes, after each round's log record of a volume,
	// a small delta object (volumes/{vid}/deltas/{inverted lsn}: the pages
	// changed since the newest checkpoint), so a cold reader's head read
	// costs at most 4 requests however long the history. One extra PUT per
	// volume per round. Needs checkpoints (a count or byte trigger).
	// Default true (`--checkpoint-deltas`).
	CheckpointDeltas bool
	// DeltaMaxPages makes a volume's checkpoint due at once when its delta
	// names more pages than this (24 bytes each). Default 8192; 0: no
	// bound beyond the checkpoint triggers.
	DeltaMaxPages int
	// CompactBelow compacts, at checkpoint time, every segment only
	// checkpoints still need (its versions are at or below the horizon)
	// whose needed fraction (versions some retained checkpoint names / pages
	// in the segment) is below it: those versions are copied into new
	// segments, the new checkpoint and every retained checkpoint naming the
	// old segment are written again (a new generation) pointing there, and
	// GC deletes the old segment a grace period later (compact.go). Only
	// with retention (RetainLSNs or RetainHistory): without it nothing is
	// ever deleted and a copy would only add bytes. Default 0.7 (measured
	// best under the overwrite bench, docs/BENCHMARKS.md); 0 disables; at
	// most 1.
	CompactBelow float64
	// CompactSegmentBytes caps the page bytes of one compacted segment
	// (also at most MaxRoundBytes). Compaction groups versions by when
	// they leave retention, so smaller segments die whole more often; larger
	// ones cost fewer PUTs. Default 128 KiB (32 pages).
	CompactSegmentBytes uint64
	// CompactMaxFraction bounds the versions one checkpoint step moves to
	// this fraction of the checkpoint's pages (at least one compacted
	// segment's worth), sparsest segments first. Default 0.1; 0: no bound.
	CompactMaxFraction float64
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Interval:            100 * time.Millisecond,
		MaxAge:              time.Second,
		TargetBytes:         8 << 20,
		MaxRoundBytes:       32 << 20,
		MaxVolumesPerRound:  1000,
		Uploads:             8,
		RetryMin:            100 * time.Millisecond,
		RetryMax:            5 * time.Second,
		OrphanInterval:      time.Hour,
		OrphanGrace:         time.Hour,
		RoundTimeout:        5 * time.Minute,
		CheckpointRecords:   64,
		CheckpointBytes:     256 << 20,
		GCInterval:          time.Minute,
		GCGrace:             10 * time.Minute,
		CheckpointDeltas:    true,
		DeltaMaxPages:       8192,
		CompactBelow:        0.7,
		CompactSegmentBytes: 128 << 10,
		CompactMaxFraction:  0.1,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval < 0 || c.MaxAge < 0 || c.RetryMin < 0 || c.RetryMax < c.RetryMin || c.OrphanInterval < 0 || c.OrphanGrace < 0 || c.RoundTimeout < 0 || c.RetainHistory < 0 || c.GCInterval < 0 || c.GCGrace < 0 {
		errs = append(errs, errors.New("durations must not be negative, and retry max must be at least retry min"))
	}
	if c.MaxRoundBytes < volume.PageSize {
		errs = append(errs, fmt.Errorf("max round bytes %d below one page", c.MaxRoundBytes))
	}
	if c.DeltaMaxPages < 0 {
		errs = append(errs, fmt.Errorf("delta max pages %d is negative", c.DeltaMaxPages))
	}
	if !(c.CompactBelow >= 0 && c.CompactBelow <= 1) {
		errs = append(errs, fmt.Errorf("compact below %v outside [0, 1]", c.CompactBelow))
	}
	if c.CheckpointRecords < 0 {
		errs = append(errs, fmt.Errorf("checkpoint records %d is negative", c.CheckpointRecords))
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
	// seen holds, per volume with unflushed commits, when this leader first
	// saw each head (ascending), so ages come from the local clock. Guarded
	// by round.
	seen map[volume.ID][]sighting

	mu sync.Mutex
	// verified holds the volumes whose log listing this leader has checked
	// against the state (nothing the state does not know); see checkLog.
	verified map[volume.ID]bool

	// checkpointCrash, when set (tests), fails a checkpoint after its PUT
	// and before its Raft entry.
	checkpointCrash func() error
	// compactCrash, when set (tests), fails a checkpoint after its
	// compacted segments are written and before the checkpoint's PUT.
	compactCrash func() error
	// genCrash, when set (tests), fails a checkpoint after each
	// generation's PUT.
	genCrash func() error
	// sweepAll is set once this flusher swept every volume's superseded
	// checkpoint generations; sweepDue holds the volumes it wrote
	// generations of since. Guarded by mu.
	sweepAll bool
	sweepDue map[volume.ID]bool
	// compactions and compactedPages count compacted segments a committed
	// checkpoint names and the page versions moved into them.
	compactions, compactedPages atomic.Uint64
	// gcSeen is when this leader first saw the open GC round. Guarded by
	// mu.
	gcSeen *gcSighting

	// deltaMemos holds the newest delta this leader wrote for the
	// deltaMemoVolumes most recently flushed volumes (each up to
	// DeltaMaxPages entries; a volume without a memo costs its next round
	// one GET of its previous delta). Safe for concurrent use.
	deltaMemos *lru.Cache[volume.ID, *deltaMemo]
	// deltaFull holds the volumes whose delta passed DeltaMaxPages;
	// deltasDropped the volumes whose stale deltas were deleted (deltas
	// off). Guarded by mu.
	deltaFull     map[volume.ID]bool
	deltasDropped map[volume.ID]bool
	// deltaCrash, when set (tests), fails a delta write at a step.
	deltaCrash func(step string) error
}

// sighting is the local time a volume's head was first seen: every LSN up
// to head was unflushed and present by then.
type sighting struct {
	head volume.LSN
	at   time.Time
}

// maxSightings bounds the sightings kept per volume; past it, newer heads
// are not recorded until older ones are flushed (their age then starts
// late, so they wait at most another MaxAge).
const maxSightings = 64

// New returns a flusher writing to store; reader (over the same store)
// serves orphan collection. reg may be nil.
func New(cfg Config, f *fsm.FSM, store objstore.Store, reader *Reader, prop Proposer, logger *slog.Logger, reg prometheus.Registerer) (*Flusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	fl := &Flusher{
		cfg: cfg, fsm: f, store: store, reader: reader, prop: prop, log: logger,
		m: newFlushMetrics(reg), now: time.Now, kick: make(chan struct{}, 1),
		seen: map[volume.ID][]sighting{}, verified: map[volume.ID]bool{},
		deltaFull: map[volume.ID]bool{}, deltasDropped: map[volume.ID]bool{},
	}
	var err error
	if fl.deltaMemos, err = lru.New[volume.ID, *deltaMemo](deltaMemoVolumes); err != nil {
		return nil, err
	}
	if reg != nil && reader != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "graft_checkpoints_unusable_total",
			Help: "Checkpoints this node's reader found failing their checksum (or missing though named) and fell back from.",
		}, func() float64 { return float64(reader.BadCheckpoints()) }))
	}
	return fl, nil
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
	f.becameLeader()
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
	var gcTick <-chan time.Time
	if f.cfg.GCInterval > 0 {
		t := time.NewTicker(f.cfg.GCInterval)
		defer t.Stop()
		gcTick = t.C
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
		cctx, cancel := f.roundContext(ctx)
		if _, err := f.CheckpointOnce(cctx); err != nil && ctx.Err() == nil {
			f.log.Warn("write checkpoints", "err", err)
		}
		cancel()
		backoff = 0
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.kick:
		case <-gcTick:
			gctx, cancel := f.roundContext(ctx)
			if _, err := f.GCOnce(gctx); err != nil && ctx.Err() == nil {
				f.log.Warn("garbage collection step failed; retried next interval", "err", err)
			}
			cancel()
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

// becameLeader forgets what an earlier term of leadership observed: ages
// start from now, and every volume's log listing is checked again.
func (f *Flusher) becameLeader() {
	f.round.Lock()
	clear(f.seen)
	f.round.Unlock()
	f.mu.Lock()
	clear(f.verified)
	clear(f.deltasDropped)
	f.mu.Unlock()
	f.deltaMemos.Purge()
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
			if _, q := f.fsm.Quarantine(vid); !q && f.fsm.History(vid).Flushed < head {
				pending = true
				break
			}
		}
		if !pending {
			return f.quarantinedUnflushed()
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

// quarantinedUnflushed returns an error naming the quarantined volumes that
// hold unflushed commits (FlushAll cannot make those durable), or nil.
func (f *Flusher) quarantinedUnflushed() error {
	var stuck []fsm.Quarantine
	for _, q := range f.fsm.Quarantined() {
		if f.fsm.HasVolume(q.VID) && f.fsm.History(q.VID).Flushed < f.fsm.Head(q.VID).LSN {
			stuck = append(stuck, q)
		}
	}
	if len(stuck) == 0 {
		return nil
	}
	return fmt.Errorf("flushed every volume but %d quarantined one(s) whose commits stay buffered until an operator lifts the quarantine; first: %w",
		len(stuck), &fsm.QuarantineError{Quarantine: stuck[0]})
}

// ages returns, per candidate, how long its oldest unflushed commit has
// been waiting by this leader's clock: since this flusher first saw a head
// at or past that commit. Commit timestamps are never used: another
// leader's clock minted them. Called with round held.
func (f *Flusher) ages(now time.Time, cands []fsm.FlushCandidate) map[volume.ID]time.Duration {
	out := make(map[volume.ID]time.Duration, len(cands))
	for _, c := range cands {
		obs := f.seen[c.VID]
		i := 0
		for i < len(obs) && obs[i].head <= c.Flushed {
			i++ // wholly flushed
		}
		obs = obs[i:]
		if n := len(obs); n == 0 || (obs[n-1].head < c.Head && n < maxSightings) {
			obs = append(obs, sighting{head: c.Head, at: now})
		}
		f.seen[c.VID] = obs
		out[c.VID] = now.Sub(obs[0].at)
	}
	for vid := range f.seen {
		if _, ok := out[vid]; !ok {
			delete(f.seen, vid) // flushed, quarantined or gone
		}
	}
	return out
}

// plan picks the volumes and ranges of a new round, or nil if no trigger
// fired.
func (f *Flusher) plan(force bool) *fsm.FlushPlan {
	cands := f.fsm.FlushCandidates()
	now := f.now()
	ages := f.ages(now, cands)
	if len(cands) == 0 {
		return nil
	}
	var total uint64
	var oldest time.Duration
	for _, c := range cands {
		total += c.Bytes
		oldest = max(oldest, ages[c.VID])
	}
	if !force && total < f.cfg.TargetBytes && oldest < f.cfg.MaxAge {
		return nil
	}
	// Oldest first, so no volume starves when rounds are capped.
	slices.SortStableFunc(cands, func(a, b fsm.FlushCandidate) int { return cmp.Compare(ages[b.VID], ages[a.VID]) })
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
// commits counts as written. A volume whose log conflicts (ErrConflict) is
// quarantined through the log, which takes it out of the round; the others
// complete. Any other failure (the store is down) leaves the round open
// for a retry.
func (f *Flusher) execute(ctx context.Context, p *fsm.FlushPlan) error {
	if planted, err := f.plantedExecute(ctx, p); planted {
		return err
	}
	start := f.now()
	var g errgroup.Group
	g.SetLimit(f.cfg.Uploads)
	errs := make([]error, len(p.Volumes))
	written := make([]uint64, len(p.Volumes))
	for i, pv := range p.Volumes {
		g.Go(func() error {
			written[i], errs[i] = f.flushVolume(ctx, pv)
			return nil
		})
	}
	_ = g.Wait()
	var failed []error
	for _, err := range errs {
		var ce *ConflictError
		switch {
		case err == nil:
		case errors.As(err, &ce) && PlantedQuarantineBlocksAll:
			failed = append(failed, err) // the planted bug: the round stays open
		case errors.As(err, &ce):
			if err := f.quarantine(ctx, ce); err != nil {
				failed = append(failed, err)
			}
		default:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		f.m.errors.Inc()
		return fmt.Errorf("flush round %d: %w", p.Round, errors.Join(failed...))
	}
	if cur := f.fsm.Plan(); cur == nil || cur.Round != p.Round {
		return nil // every volume of the round was quarantined: it closed
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
	var bytes uint64
	for i, pv := range p.Volumes {
		if errs[i] != nil {
			continue
		}
		f.m.volumes.Inc()
		f.m.commits.Add(float64(pv.To - pv.From + 1))
		bytes += written[i]
	}
	f.m.bytes.Add(float64(bytes))
	f.m.seconds.Observe(f.now().Sub(start).Seconds())
	f.log.Debug("flush round done", "round", p.Round, "volumes", len(p.Volumes), "bytes", bytes, "took", f.now().Sub(start))
	return nil
}

// quarantine proposes the quarantine of a volume whose log conflicts.
func (f *Flusher) quarantine(ctx context.Context, ce *ConflictError) error {
	f.log.Error("QUARANTINE: a log record in the object store conflicts with this cluster's state; the volume stops flushing and its commits are refused until an operator fixes or removes the object and runs `graft cluster unquarantine VID`",
		"vid", ce.VID, "key", ce.Key, "reason", ce.Reason)
	f.mu.Lock()
	delete(f.verified, ce.VID)
	f.mu.Unlock()
	if err := proposeAdmin(ctx, f.prop, fsm.EncodeQuarantine(fsm.Quarantine{VID: ce.VID, Key: ce.Key, Reason: ce.Reason})); err != nil {
		return fmt.Errorf("quarantine volume %s: %w", ce.VID, err)
	}
	f.m.quarantines.Inc()
	return nil
}

// proposeAdmin proposes an admin entry and returns its rejection, if any.
func proposeAdmin(ctx context.Context, prop Proposer, cmd []byte) error {
	resp, err := prop.Propose(ctx, cmd)
	if err != nil {
		return err
	}
	res, ok := resp.(*fsm.AdminResult)
	if !ok {
		if cr, ok := resp.(*fsm.CommitResult); ok && cr.Err != nil {
			return cr.Err
		}
		return fmt.Errorf("unexpected response %T", resp)
	}
	return res.Err
}

// checkLog lists the volume's log records once per leadership and checks
// that the state knows every one of them (its history, or the record this
// round writes). A record it does not know means the bucket is ahead of
// the state (Raft state restored from an older backup, another cluster on
// the prefix): writing our record next to it, or deleting what it names,
// would corrupt the volume's log, so the volume is quarantined instead.
func (f *Flusher) checkLog(ctx context.Context, pv fsm.PlanVolume) error {
	f.mu.Lock()
	done := f.verified[pv.VID]
	f.mu.Unlock()
	if done {
		return nil
	}
	objs, err := f.store.List(ctx, segment.LogPrefix(pv.VID))
	if err != nil {
		return &StoreError{Op: "list log of " + pv.VID.String(), Err: err}
	}
	h := f.fsm.History(pv.VID)
	for _, o := range objs {
		if ce := knownRecord(h, pv.VID, pv.From, o.Key); ce != nil {
			return ce
		}
	}
	f.mu.Lock()
	f.verified[pv.VID] = true
	f.mu.Unlock()
	return nil
}

// knownRecord checks that key, a key under vid's log prefix, is a log
// record the state knows: one of h's records, or the one starting at next
// (the record the open round writes; 0 for none).
func knownRecord(h fsm.History, vid volume.ID, next volume.LSN, key string) *ConflictError {
	v, from, err := segment.ParseLogKey(key)
	if err != nil || v != vid {
		return &ConflictError{VID: vid, Key: key, Reason: fmt.Sprintf("not a log record key of this volume: %v", err)}
	}
	if from == next || from <= h.Checkpoint {
		return nil // the next record, or one folded into the newest checkpoint
	}
	if _, ok := slices.BinarySearch(h.Froms, from); ok {
		return nil
	}
	return &ConflictError{VID: vid, Key: key, Reason: fmt.Sprintf(
		"log record from lsn %d is not in this cluster's history (flushed up to %d, %d records): the bucket is ahead of the cluster's state (Raft state restored from an older backup, or another cluster writing this prefix)",
		from, h.Flushed, len(h.Froms))}
}

// flushVolume writes one volume's segment and log record.
func (f *Flusher) flushVolume(ctx context.Context, pv fsm.PlanVolume) (uint64, error) {
	if err := f.checkLog(ctx, pv); err != nil {
		return 0, err
	}
	if err := f.dropStaleDeltas(ctx, pv.VID); err != nil {
		return 0, err
	}
	commits, err := f.fsm.Buffered(pv.VID, pv.From, pv.To)
	if err != nil {
		return 0, fmt.Errorf("volume %s: %w", pv.VID, err)
	}
	return f.writeVolume(ctx, pv, commits)
}

// writeVolume writes one volume's segment and log record from its
// buffered commits.
func (f *Flusher) writeVolume(ctx context.Context, pv fsm.PlanVolume, commits []fsm.BufferedCommit) (uint64, error) {
	rec := segment.Record{VID: pv.VID, From: pv.From, To: pv.To, Segment: segment.ID(pv.Segment), Commits: make([]segment.RecordCommit, len(commits))}
	var written uint64
	var b *segment.Builder
	for i, c := range commits {
		rec.Commits[i] = segment.RecordCommit{LSN: c.LSN, PageCount: c.PageCount, TimeUnixMs: c.TimeUnixMs, Hash: c.Hash, Graft: c.Graft}
		if len(c.Pages) > 0 {
			if b == nil {
				b = segment.NewBuilder(pv.VID)
			}
			if err := b.AddCommitShared(c.LSN, c.Pages); err != nil { // buffered pages are immutable
				return 0, fmt.Errorf("build segment of %s: %w", pv.VID, err)
			}
		}
	}
	if (b != nil) != (rec.Segment != segment.ID{}) {
		return 0, fmt.Errorf("%w: plan for %s [%d, %d] has segment %s but the range wrote pages: %v", ErrLayout, pv.VID, pv.From, pv.To, rec.Segment, b != nil)
	}
	var ix segment.Index // the segment's index, for the delta
	if b != nil {
		var buf bytes.Buffer
		buf.Grow(int(b.Size()))
		if _, err := b.WriteTo(&buf); err != nil {
			return 0, fmt.Errorf("encode segment of %s: %w", pv.VID, err)
		}
		var err error
		if ix, err = indexOf(buf.Bytes()); err != nil {
			return 0, fmt.Errorf("index of the segment of %s: %w", pv.VID, err)
		}
		t := f.now()
		err = f.store.Put(ctx, segment.SegmentKey(pv.VID, rec.Segment), buf.Bytes())
		f.m.observePut("segment", t, err)
		if err != nil && !plantedIgnoreUploadError {
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
		if err := f.writeDelta(ctx, pv, &rec, rec.Segment, ix); err != nil {
			return 0, err
		}
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
		return 0, &ConflictError{VID: pv.VID, Key: key, Reason: "undecodable record: " + err.Error()}
	}
	if err := sameCommits(&have, &rec); err != nil {
		f.m.conflicts.Inc()
		return 0, &ConflictError{VID: pv.VID, Key: key, Reason: "record holds other commits than the cluster's: " + err.Error()}
	}
	if have.Segment != rec.Segment && rec.Segment != (segment.ID{}) {
		// The stored record points at another upload of the same pages;
		// ours is an orphan.
		if err := f.store.Delete(ctx, segment.SegmentKey(pv.VID, rec.Segment)); err != nil {
			f.log.Warn("delete orphan segment", "segment", rec.Segment, "err", err)
		}
	}
	// The same commits make the same segment layout: only its id differs.
	if err := f.writeDelta(ctx, pv, &rec, have.Segment, ix); err != nil {
		return 0, err
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
