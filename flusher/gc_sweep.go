package flusher

import (
	"context"
	"errors"
	"fmt"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Sweeping superseded checkpoint generations.
//
// Compaction writes a retained checkpoint again, as its next generation,
// pointing at compacted copies of its versions (compact.go); the segments
// it copied from are then named only by superseded generations. The sweep
// deletes them, then those generations, once a newer generation has been
// listed for GCGrace (by its object time), every GC step, without a Raft
// round: what it deletes depends only on the bucket and the grace, so two
// leaders sweeping at once delete the same things.
//
// It deletes a segment only if a stale generation (classifyGens) names it
// and no generation in use of any listed checkpoint, and no listed log
// record, does. Why that deletes nothing a retained snapshot needs: a
// reader of a snapshot L starts from the newest usable generation of a
// checkpoint C <= L, which is in use (or a newer one is, listed with it,
// and the reader lists again when a segment is missing: forgetViews), and
// reads records after C through their own segments, which records keep.
// A checkpoint or generation written after the sweep's listing was built
// by a checkpoint step that started at most half a grace earlier from the
// generations current then (listRetained lists them first); a generation
// stale now was superseded a full grace before the sweep, so before that
// step started, and the step saw its successor: nothing it writes names
// a segment only the stale one named, except its own fresh compacted
// segments, which no stale generation names.

// markSweep records that vid has superseded generations to sweep.
func (f *Flusher) markSweep(vid volume.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sweepDue == nil {
		f.sweepDue = map[volume.ID]bool{}
	}
	f.sweepDue[vid] = true
}

// sweepGens sweeps the volumes this flusher wrote generations of, and on
// its first pass every volume (a previous leader may have left some). It
// returns the number of objects deleted.
func (f *Flusher) sweepGens(ctx context.Context) (int, error) {
	f.mu.Lock()
	all := !f.sweepAll
	var vids []volume.ID
	for vid := range f.sweepDue {
		vids = append(vids, vid)
	}
	f.mu.Unlock()
	if all {
		vids = vids[:0]
		for _, c := range f.fsm.GCCandidates() {
			vids = append(vids, c.VID)
		}
	}
	deleted := 0
	var errs []error
	for _, vid := range vids {
		n, pending, err := f.sweepVolume(ctx, vid)
		deleted += n
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep checkpoint generations of %s: %w", vid, err))
			continue
		}
		if !pending {
			f.mu.Lock()
			delete(f.sweepDue, vid)
			f.mu.Unlock()
		}
	}
	f.m.gcDeleted.Add(float64(deleted))
	err := errors.Join(errs...)
	if all && err == nil {
		f.mu.Lock()
		f.sweepAll = true
		f.mu.Unlock()
	}
	return deleted, err
}

// sweepVolume deletes what vid's stale generations alone name, then those
// generations; pending reports superseded generations left for later.
func (f *Flusher) sweepVolume(ctx context.Context, vid volume.ID) (deleted int, pending bool, err error) {
	objs, err := f.store.List(ctx, segment.CheckpointPrefix(vid))
	if err != nil {
		return 0, true, &StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	now := f.now()
	keep := map[segment.ID]bool{}
	var stale []genKey
	for _, g := range groupCheckpoints(objs) {
		inUse, st, err := f.classifyGens(ctx, vid, g, now)
		if err != nil {
			return 0, true, err
		}
		for _, ck := range inUse {
			for _, sid := range ck.Segments {
				keep[sid] = true
			}
		}
		for _, gen := range st {
			stale = append(stale, genKey{vid, g.lsn, gen})
		}
		pending = pending || len(g.gens) > len(st)+1
	}
	if len(stale) == 0 {
		return 0, pending, nil
	}
	if !plantedSweepIgnoresRecords {
		if err := f.keepRecordSegments(ctx, vid, keep); err != nil {
			return 0, true, err
		}
	}
	del := func(key string) error {
		if err := f.store.Delete(ctx, key); err != nil {
			return &StoreError{Op: "delete " + key, Err: err}
		}
		deleted++
		return nil
	}
	for _, k := range stale {
		ck, err := f.reader.checkpointAtGen(ctx, vid, k.lsn, k.gen)
		var bad *badCheckpointError
		switch {
		case errors.As(err, &bad):
			continue // names nothing we can tell; orphan collection
		case err != nil:
			return deleted, true, err
		}
		for _, sid := range ck.Segments {
			if !keep[sid] {
				keep[sid] = true // once
				if err := del(segment.SegmentKey(vid, sid)); err != nil {
					return deleted, true, err
				}
			}
		}
	}
	for _, k := range stale {
		if err := del(segment.CheckpointGenKey(vid, k.lsn, k.gen)); err != nil {
			return deleted, true, err
		}
		f.reader.oldGens.Remove(k)
	}
	if deleted > 0 {
		f.log.Debug("superseded checkpoint generations swept", "vid", vid, "generations", len(stale), "objects", deleted)
	}
	return deleted, pending, nil
}

// keepRecordSegments adds to keep the segment of every listed log record
// of vid.
func (f *Flusher) keepRecordSegments(ctx context.Context, vid volume.ID, keep map[segment.ID]bool) error {
	after := ""
	for {
		objs, err := objstore.ListAfter(ctx, f.store, segment.LogPrefix(vid), after, logListLimit)
		if err != nil {
			return &StoreError{Op: "list log of " + vid.String(), Err: err}
		}
		for _, o := range objs {
			_, from, err := segment.ParseLogKey(o.Key)
			if err != nil {
				return fmt.Errorf("%w: unexpected key %q", ErrLayout, o.Key)
			}
			rec, err := f.reader.Record(ctx, vid, from)
			if err != nil {
				if errors.Is(err, objstore.ErrNotFound) {
					continue // deleted by GC since the listing
				}
				return err
			}
			if !rec.Segment.IsZero() {
				keep[rec.Segment] = true
			}
		}
		if len(objs) < logListLimit {
			return nil
		}
		after = objs[len(objs)-1].Key
	}
}
