package flusher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Retention and garbage collection.
//
// The leader decides, per volume, a horizon (the oldest readable LSN) from
// Config.RetainLSNs and Config.RetainHistory, and a base: the newest usable
// checkpoint at or below the horizon. Every retained snapshot (LSN >=
// horizon >= base) is read from the base checkpoint or a later one and the
// log records after the base, so GC may delete exactly:
//
//   - log records wholly at or below the base (a checkpoint ends a record,
//     so "from <= base" means "to <= base"),
//   - their segments, and the segments the checkpoints older than the base
//     name, except those a retained checkpoint (usable, at or after the
//     base) names (with compaction a page version may live in two
//     segments; see gcKeep for the argument),
//   - checkpoints older than the base.
//
// The decision goes through Raft (fsm.GCPlan, kind 14) before anything is
// deleted, so two leaders never disagree, and it moves the horizons at
// once: from then on reads below them answer fsm.ErrRetention. Deletion
// waits Config.GCGrace after the plan (by the plan's time and by this
// leader's clock since it first saw the plan), so readers and edges that
// started before the horizon moved finish; then the leader deletes, per
// volume, segments before their record and records before the older
// checkpoints, and commits GCDone (kind 15). A crash at any step leaves the
// plan open; the next leader re-runs it (deleting is idempotent), and what
// a half-done step leaves behind is below the horizon, never above.

// GCOnce runs one step of garbage collection: it finishes the open GC round
// once its grace period has passed, or plans a new one when retention moved
// a horizon. It returns the number of objects deleted.
func (f *Flusher) GCOnce(ctx context.Context) (int, error) {
	if f.reader == nil {
		return 0, nil
	}
	purged, err := f.purgeDeleted(ctx)
	if err != nil {
		return purged, err
	}
	if f.cfg.RetainLSNs > 0 || f.cfg.RetainHistory > 0 {
		n, err := f.sweepGens(ctx) // gc_sweep.go
		purged += n
		if err != nil {
			return purged, err
		}
	}
	if p := f.fsm.GC(); p != nil {
		n, err := f.executeGC(ctx, p)
		return purged + n, err
	}
	if f.cfg.RetainLSNs == 0 && f.cfg.RetainHistory == 0 {
		return purged, nil
	}
	p, err := f.planGC(ctx)
	if err != nil || p == nil {
		return purged, err
	}
	resp, err := f.prop.Propose(ctx, fsm.EncodeGCPlan(p))
	if err != nil {
		return purged, fmt.Errorf("propose gc plan: %w", err)
	}
	res, ok := resp.(*fsm.AdminResult)
	if !ok || res.Err != nil {
		return purged, fmt.Errorf("gc plan rejected: %v", resp)
	}
	p.Round = res.Round
	f.log.Info("retention moved volume horizons", "round", p.Round, "volumes", len(p.Volumes))
	n, err := f.executeGC(ctx, p)
	return purged + n, err
}

// purgeDeleted removes every object of the volumes deleted at least
// GCGrace ago (by the tombstone's time), then commits each purge. At once,
// before the grace, it writes the volume's deleted marker
// (segment.DeletedKey), so that recovery on the bucket (a new cluster) does
// not adopt the volume again; the marker goes last. Objects a flush round
// in flight writes after the listing are found by the next pass, as the
// purge is committed only after a listing that found nothing but the
// marker.
func (f *Flusher) purgeDeleted(ctx context.Context) (int, error) {
	deleted := 0
	for _, t := range f.fsm.Unpurged() {
		marker := segment.DeletedKey(t.VID)
		if err := f.store.PutIfAbsent(ctx, marker, []byte("graft deleted volume "+t.VID.String()+"\n")); err != nil && !errors.Is(err, objstore.ErrExists) {
			return deleted, &StoreError{Op: "write " + marker, Err: err}
		}
		if f.now().Sub(time.UnixMilli(t.TimeUnixMs)) < f.cfg.GCGrace {
			continue
		}
		objs, err := f.store.List(ctx, segment.VolumesPrefix+t.VID.String()+"/")
		if err != nil {
			return deleted, &StoreError{Op: "list deleted volume " + t.VID.String(), Err: err}
		}
		left := 0
		for _, o := range objs {
			if o.Key == marker {
				continue
			}
			if err := f.store.Delete(ctx, o.Key); err != nil {
				return deleted, &StoreError{Op: "delete " + o.Key, Err: err}
			}
			deleted++
			left++
		}
		f.m.gcDeleted.Add(float64(left))
		if left > 0 {
			continue // list again next time: commit the purge after a listing with only the marker
		}
		if err := proposeAdmin(ctx, f.prop, fsm.EncodeTombstone(fsm.Tombstone{VID: t.VID, Purged: true})); err != nil {
			return deleted, fmt.Errorf("propose purge of %s: %w", t.VID, err)
		}
		if err := f.store.Delete(ctx, marker); err != nil {
			f.log.Warn("delete the deleted-volume marker", "key", marker, "err", err)
		}
		f.log.Info("deleted volume's objects removed", "vid", t.VID)
	}
	return deleted, nil
}

// planGC computes each volume's new horizon and base, or nil if none moved.
func (f *Flusher) planGC(ctx context.Context) (*fsm.GCPlan, error) {
	now := f.now()
	p := &fsm.GCPlan{TimeUnixMs: now.UnixMilli()}
	for _, c := range f.fsm.GCCandidates() {
		hz, err := f.horizon(ctx, c, now)
		if err != nil {
			return nil, err
		}
		hz = min(hz, c.Checkpoint)
		if hz <= c.Horizon || hz == 0 {
			continue
		}
		base, err := f.baseCheckpoint(ctx, c.VID, hz)
		if err != nil {
			return nil, err
		}
		p.Volumes = append(p.Volumes, fsm.GCVolume{VID: c.VID, Horizon: hz, Base: base})
	}
	if len(p.Volumes) == 0 {
		return nil, nil
	}
	return p, nil
}

// horizon returns the oldest LSN retention keeps readable for c (0: all).
// With both settings, the one keeping more wins.
func (f *Flusher) horizon(ctx context.Context, c fsm.GCCandidate, now time.Time) (volume.LSN, error) {
	byLSN, byTime := volume.LSN(0), volume.LSN(0)
	if n := f.cfg.RetainLSNs; n > 0 && uint64(c.Head) > n {
		byLSN = c.Head - volume.LSN(n)
	}
	if d := f.cfg.RetainHistory; d > 0 {
		// The newest checkpoint whose commit was before now - d: every
		// snapshot older than it was superseded by that commit, so before
		// now - d. Checkpoint keys list newest first. (The commit's time, not
		// the object's: a checkpoint rewritten by compaction is a newer
		// object of the same snapshot.)
		cutoff := now.Add(-d).UnixMilli()
		after := segment.CheckpointListStart(c.VID, c.Checkpoint)
	scan:
		for {
			objs, err := objstore.ListAfter(ctx, f.store, segment.CheckpointPrefix(c.VID), after, logListLimit)
			if err != nil {
				return 0, &StoreError{Op: "list checkpoints of " + c.VID.String(), Err: err}
			}
			for _, g := range groupCheckpoints(objs) {
				ck, err := f.reader.checkpointGens(ctx, c.VID, g.lsn, g.gens)
				var bad *badCheckpointError
				switch {
				case errors.As(err, &bad):
					continue // an older one will do
				case err != nil:
					return 0, err
				}
				if ck.Commit.TimeUnixMs <= cutoff {
					byTime = g.lsn
					break scan
				}
			}
			if len(objs) < logListLimit {
				break
			}
			after = objs[len(objs)-1].Key
		}
	}
	switch {
	case f.cfg.RetainLSNs > 0 && f.cfg.RetainHistory > 0:
		return min(byLSN, byTime), nil
	case f.cfg.RetainLSNs > 0:
		return byLSN, nil
	}
	return byTime, nil
}

// baseCheckpoint returns the newest usable checkpoint of vid at or below
// lsn (0: none).
func (f *Flusher) baseCheckpoint(ctx context.Context, vid volume.ID, lsn volume.LSN) (volume.LSN, error) {
	objs, err := objstore.ListAfter(ctx, f.store, segment.CheckpointPrefix(vid), segment.CheckpointListStart(vid, lsn), ckptListLimit)
	if err != nil {
		return 0, &StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	for _, g := range groupCheckpoints(objs) {
		if g.lsn > lsn {
			continue
		}
		if _, err := f.reader.checkpointGens(ctx, vid, g.lsn, g.gens); err != nil {
			var bad *badCheckpointError
			if errors.As(err, &bad) {
				continue
			}
			return 0, err
		}
		return g.lsn, nil
	}
	return 0, nil
}

// executeGC deletes what the open round allows once its grace has passed,
// then commits its end. Before the grace it does nothing.
func (f *Flusher) executeGC(ctx context.Context, p *fsm.GCPlan) (int, error) {
	now := f.now()
	f.mu.Lock()
	if f.gcSeen == nil || f.gcSeen.round != p.Round {
		f.gcSeen = &gcSighting{round: p.Round, at: now}
	}
	seen := f.gcSeen.at
	f.mu.Unlock()
	if now.Sub(seen) < f.cfg.GCGrace || now.Sub(time.UnixMilli(p.TimeUnixMs)) < f.cfg.GCGrace {
		return 0, nil
	}
	deleted := 0
	var errs []error
	for _, gv := range p.Volumes {
		if gv.Base == 0 {
			continue
		}
		if _, q := f.fsm.Quarantine(gv.VID); q {
			continue // an operator's problem first; nothing is deleted
		}
		n, err := f.collectVolume(ctx, gv)
		deleted += n
		if err != nil {
			errs = append(errs, fmt.Errorf("gc of %s below %d: %w", gv.VID, gv.Base, err))
		}
	}
	f.m.gcDeleted.Add(float64(deleted))
	if err := errors.Join(errs...); err != nil {
		return deleted, err
	}
	if err := proposeAdmin(ctx, f.prop, fsm.EncodeGCDone(p.Round)); err != nil && !errors.Is(err, fsm.ErrFlushRejected) {
		return deleted, fmt.Errorf("propose end of gc round %d: %w", p.Round, err)
	}
	if deleted > 0 {
		f.log.Info("garbage collected", "round", p.Round, "objects", deleted)
	}
	return deleted, nil
}

type gcSighting struct {
	round uint64
	at    time.Time
}

// gcKeep lists vid's checkpoints (GC leaves few) and returns the segments
// the retained ones (usable, at or after the base) name in their in-use
// generations (classifyGens: the newest usable one, and those superseded
// less than GCGrace ago), and every generation of the checkpoints older
// than the base, oldest first. A nil keep with a nil error means the base
// checkpoint is unusable: nothing is deleted.
//
// (With checkpoint generations, "C's table" below reads "the tables of
// C's in-use generations": a generation written after the listing was
// derived from one listed and in use, or from one itself derived, by the
// same induction, plus fresh compacted segments; see gc_sweep.go.)
//
// Why (a)-(c) delete nothing a retained snapshot L >= horizon >= base
// needs. A reader of L starts from the newest usable checkpoint C <= L
// (C >= base, as the base is usable) and reads the records in (C, L] and
// their segments. (c) deletes only checkpoints < base, and (a) only records
// <= base. Segments: (a) deletes record segments of records <= base, and (b)
// segments that checkpoints < base name, which hold only versions <= those
// checkpoints, so neither ever deletes the segment of a record > base
// (record segments are fresh per flush round and hold exactly that round's
// versions). Neither deletes a segment in keep. What remains is that C
// names only segments in keep, or segments neither (a) nor (b) can touch.
// C was either listed here (then its table is in keep), or written after
// the listing. A checkpoint written after the listing was built (the
// checkpoint step's time budget, compact.go) from a state that knew this
// round's plan, so from a checkpoint P >= base (the state's checkpoint,
// which the plan's horizon and base do not pass, or, if that one is
// unusable, the newest usable one below it, which is at or above every
// usable base below the state's checkpoint), and C's table
// is P's locations, segments of records in (P, C] (> base), and fresh
// compacted segments C's step wrote (named by no record and by no
// checkpoint < base); by induction on the chain of such checkpoints back
// to one listed here, every segment C names is in keep or untouchable.
// Without compaction keep was the base's table alone: a page version had
// one location, so a later checkpoint named a record's segment only if
// the base did. Compaction gives a version a second location, which is
// why every retained table counts.
func (f *Flusher) gcKeep(ctx context.Context, gv fsm.GCVolume) (keep map[segment.ID]bool, older []genKey, err error) {
	objs, err := f.store.List(ctx, segment.CheckpointPrefix(gv.VID))
	if err != nil {
		return nil, nil, &StoreError{Op: "list checkpoints of " + gv.VID.String(), Err: err}
	}
	keep = map[segment.ID]bool{}
	sawBase := false
	now := f.now()
	for _, g := range groupCheckpoints(objs) { // newest first
		if g.lsn < gv.Base {
			for _, gen := range g.gens {
				older = append(older, genKey{gv.VID, g.lsn, gen})
			}
			continue
		}
		inUse, _, err := f.classifyGens(ctx, gv.VID, g, now)
		switch {
		case err != nil:
			return nil, nil, err
		case len(inUse) == 0 && g.lsn == gv.Base:
			f.log.Error("gc: base checkpoint unusable; nothing of the volume is deleted", "vid", gv.VID, "base", gv.Base)
			return nil, nil, nil
		case len(inUse) == 0:
			continue // no reader uses it
		}
		sawBase = sawBase || g.lsn == gv.Base
		for _, ck := range inUse {
			for _, sid := range ck.Segments {
				keep[sid] = true
			}
		}
	}
	if !sawBase {
		f.log.Error("gc: base checkpoint not listed; nothing of the volume is deleted", "vid", gv.VID, "base", gv.Base)
		return nil, nil, nil
	}
	slices.Reverse(older)
	return keep, older, nil
}

// classifyGens sorts the listed generations of one checkpoint: in use are
// the newest down to the newest usable one (what readers take) and those
// superseded (a newer generation listed) less than GCGrace ago (what
// readers that listed earlier may still use); stale are the others, whose
// segments only the sweep may delete. A checkpoint with no usable
// generation has nothing in use.
func (f *Flusher) classifyGens(ctx context.Context, vid volume.ID, g ckptGroup, now time.Time) (inUse []*segment.Checkpoint, stale []uint64, err error) {
	usable := false
	for i, gen := range g.gens { // newest first
		if usable && now.Sub(g.objs[i-1].Modified) >= f.cfg.GCGrace {
			stale = append(stale, gen)
			continue
		}
		ck, err := f.reader.checkpointAtGen(ctx, vid, g.lsn, gen)
		var bad *badCheckpointError
		switch {
		case errors.As(err, &bad):
			continue
		case err != nil:
			return nil, nil, err
		}
		inUse = append(inUse, ck)
		usable = true
	}
	return inUse, stale, nil
}

// collectVolume deletes vid's objects that no snapshot at or after the
// base needs (see gcKeep for the argument):
//
//	(a) per record at or below the base, its segment unless a retained
//	    checkpoint names it, then the record;
//	(b) per checkpoint older than the base, every segment it names that no
//	    retained checkpoint names (segments carried by earlier rounds, and
//	    compacted segments only checkpoints named);
//	(c) the checkpoints older than the base.
//
// Retained checkpoints are the usable checkpoints at or after the base. An
// unusable base checkpoint deletes nothing.
func (f *Flusher) collectVolume(ctx context.Context, gv fsm.GCVolume) (int, error) {
	keep, older, err := f.gcKeep(ctx, gv)
	if err != nil || keep == nil {
		return 0, err
	}
	deleted := 0
	del := func(key string) error {
		if err := f.store.Delete(ctx, key); err != nil {
			return &StoreError{Op: "delete " + key, Err: err}
		}
		deleted++
		return nil
	}
	if err := f.collectDeltas(ctx, gv.VID, gv.Base, del); err != nil { // gc_delta.go
		return deleted, err
	}
	after := ""
records:
	for {
		objs, err := objstore.ListAfter(ctx, f.store, segment.LogPrefix(gv.VID), after, logListLimit)
		if err != nil {
			return deleted, &StoreError{Op: "list log of " + gv.VID.String(), Err: err}
		}
		for _, o := range objs {
			_, from, err := segment.ParseLogKey(o.Key)
			if err != nil {
				return deleted, fmt.Errorf("%w: unexpected key %q", ErrLayout, o.Key)
			}
			if from > gv.Base {
				if err := f.plantedGCExtra(ctx, gv.VID, from, del); err != nil {
					return deleted, err
				}
				break records
			}
			rec, err := f.reader.Record(ctx, gv.VID, from)
			if err != nil {
				return deleted, err
			}
			if rec.To > gv.Base {
				return deleted, fmt.Errorf("%w: record %s@%d ends at %d, past the base checkpoint %d", ErrLayout, gv.VID, from, rec.To, gv.Base)
			}
			if !rec.Segment.IsZero() && !keep[rec.Segment] {
				if err := del(segment.SegmentKey(gv.VID, rec.Segment)); err != nil {
					return deleted, err
				}
			}
			if err := del(o.Key); err != nil {
				return deleted, err
			}
		}
		if len(objs) < logListLimit {
			break
		}
		after = objs[len(objs)-1].Key
	}
	// (b) Segments kept by earlier rounds (their records are gone) and
	// compacted segments: what the checkpoints about to go name and no
	// retained checkpoint does. An unusable one leaves its segments to
	// orphan collection.
	gone := map[segment.ID]bool{}
	for _, k := range older {
		ck, err := f.reader.checkpointAtGen(ctx, k.vid, k.lsn, k.gen)
		var bad *badCheckpointError
		switch {
		case errors.As(err, &bad):
			continue
		case err != nil:
			return deleted, err
		}
		for _, sid := range ck.Segments {
			if !keep[sid] && !gone[sid] {
				if err := del(segment.SegmentKey(gv.VID, sid)); err != nil {
					return deleted, err
				}
				gone[sid] = true
			}
		}
	}
	// (c)
	after = segment.CheckpointKey(gv.VID, gv.Base) // older ones sort after it
	for {
		objs, err := objstore.ListAfter(ctx, f.store, segment.CheckpointPrefix(gv.VID), after, logListLimit)
		if err != nil {
			return deleted, &StoreError{Op: "list checkpoints of " + gv.VID.String(), Err: err}
		}
		for _, o := range objs {
			if _, lsn, err := segment.ParseCheckpointKey(o.Key); err != nil || lsn >= gv.Base {
				continue
			}
			if err := del(o.Key); err != nil {
				return deleted, err
			}
		}
		if len(objs) < logListLimit {
			return deleted, nil
		}
		after = objs[len(objs)-1].Key
	}
}
