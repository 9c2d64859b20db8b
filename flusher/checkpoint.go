package flusher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// CheckpointOnce writes a checkpoint for every volume whose records since
// its newest checkpoint passed Config.CheckpointRecords or CheckpointBytes,
// at its flushed watermark, and commits each through Raft (fsm entry
// kind 13), which folds the records up to it out of the volume's history.
// Steps per volume, each safe to crash after:
//
//  1. build from the newest checkpoint and the records after it (reads only);
//  2. PUT-if-absent the checkpoint (a crash leaves an unreferenced but
//     complete checkpoint; readers may already use it, which is correct:
//     it describes a flushed snapshot);
//  3. propose the checkpoint entry (rejected harmlessly if another leader
//     did it first).
//
// It returns how many checkpoints it committed. A volume's failure is
// joined into the error; the others go on.
func (f *Flusher) CheckpointOnce(ctx context.Context) (int, error) {
	if f.reader == nil || (f.cfg.CheckpointRecords == 0 && f.cfg.CheckpointBytes == 0) {
		return 0, nil
	}
	var errs []error
	n := 0
	for _, vid := range f.deltaCandidates(f.fsm.CheckpointCandidates(f.cfg.CheckpointRecords, f.cfg.CheckpointBytes)) {
		ok, err := f.checkpoint(ctx, vid)
		if err != nil {
			errs = append(errs, fmt.Errorf("checkpoint %s: %w", vid, err))
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Checkpoint writes and commits the checkpoint of vid at its flushed
// watermark, whatever the triggers say. It reports whether one was
// committed.
func (f *Flusher) Checkpoint(ctx context.Context, vid volume.ID) (bool, error) {
	return f.checkpoint(ctx, vid)
}

func (f *Flusher) checkpoint(ctx context.Context, vid volume.ID) (bool, error) {
	start := f.now()
	h := f.fsm.History(vid)
	if h.Flushed <= h.Checkpoint {
		return false, nil
	}
	var ret []retainedCkpt
	if f.cfg.RetainLSNs > 0 || f.cfg.RetainHistory > 0 {
		// GC may sweep superseded generations: build on current ones.
		var err error
		if ret, err = f.listRetained(ctx, vid, h.Horizon); err != nil {
			return false, err
		}
	}
	ck, err := f.reader.BuildCheckpoint(ctx, h, h.Flushed)
	if err != nil {
		return false, err
	}
	comp, err := f.compact(ctx, ck, ret, h.Horizon, start)
	if err != nil {
		return false, err
	}
	if err := f.plantedCompactCrash(); err != nil {
		return false, err
	}
	if err := f.checkBudget(start, "the checkpoint's PUT"); err != nil {
		return false, err
	}
	kept, err := writeCheckpoint(ctx, f.store, ck)
	if err != nil {
		return false, err
	}
	if kept && len(comp.segments) > 0 {
		// The checkpoint at this LSN was already there (an earlier attempt
		// whose response was lost): it names its own segments, not ours.
		f.deleteFresh(ctx, vid, comp.segments)
		comp = compactResult{}
	}
	if err := f.writeGens(ctx, comp.gens, start); err != nil {
		return false, err
	}
	if err := f.plantedCheckpointCrash(); err != nil {
		return false, err
	}
	if err := proposeAdmin(ctx, f.prop, fsm.EncodeCheckpoint(vid, ck.LSN)); err != nil {
		if errors.Is(err, fsm.ErrFlushRejected) {
			return false, nil // another leader's checkpoint got there first
		}
		return false, fmt.Errorf("propose checkpoint %d: %w", ck.LSN, err)
	}
	f.m.checkpoints.Inc()
	if n := len(comp.segments); n > 0 {
		f.m.compactions.Add(float64(n))
		f.m.compacted.Add(float64(comp.pages))
		f.compactions.Add(uint64(n))
		f.compactedPages.Add(uint64(comp.pages))
		f.log.Info("segments compacted", "vid", vid, "checkpoint", ck.LSN, "new_segments", n, "pages_moved", comp.pages, "segments", len(ck.Segments))
	}
	f.log.Debug("checkpoint written", "vid", vid, "lsn", ck.LSN, "pages", len(ck.Pages), "segments", len(ck.Segments), "records_folded", len(h.Froms))
	return true, nil
}

// writeGens writes the relocated retained checkpoints as their next
// generations, create-only. A key already taken is a concurrent rewrite
// by another leader, whose generation stands (ours only differ in where
// the same versions live).
func (f *Flusher) writeGens(ctx context.Context, gens []*segment.Checkpoint, start time.Time) error {
	for _, g := range gens {
		if err := f.checkBudget(start, "a checkpoint generation's PUT"); err != nil {
			return err
		}
		data, err := g.AppendBinary(nil)
		if err != nil {
			return fmt.Errorf("encode checkpoint %s@%d generation %d: %w", g.VID, g.LSN, g.Gen, err)
		}
		key := segment.CheckpointGenKey(g.VID, g.LSN, g.Gen)
		switch err := f.store.PutIfAbsent(ctx, key, data); {
		case errors.Is(err, objstore.ErrExists):
			f.log.Warn("checkpoint generation already written; keeping that one", "key", key)
		case err != nil:
			return &StoreError{Op: "write checkpoint generation " + key, Err: err}
		default:
			f.m.checkpointGens.Inc()
		}
		if err := f.plantedGenCrash(); err != nil {
			return err
		}
	}
	if len(gens) > 0 {
		f.markSweep(gens[0].VID)
	}
	return nil
}

// Compactions returns how many compacted segments this flusher wrote that
// a committed checkpoint names, and the live page versions moved into them.
func (f *Flusher) Compactions() (segments, pages uint64) {
	return f.compactions.Load(), f.compactedPages.Load()
}

// plantedGenCrash is a fault-injection seam for tests: a non-nil error
// stops a checkpoint after a generation's PUT.
func (f *Flusher) plantedGenCrash() error {
	if f.genCrash != nil {
		return f.genCrash()
	}
	return nil
}

// plantedCheckpointCrash is a fault-injection seam for tests: a non-nil
// error stops a checkpoint after its PUT and before its Raft entry.
func (f *Flusher) plantedCheckpointCrash() error {
	if f.checkpointCrash != nil {
		return f.checkpointCrash()
	}
	return nil
}

// writeCheckpoint stores ck create-only. A checkpoint already there that
// decodes to the same snapshot (our earlier attempt, another leader's) is
// kept (kept reports it, unless it is byte for byte ck); one that does not
// decode is replaced, as no reader can use it.
func writeCheckpoint(ctx context.Context, store objstore.Store, ck *segment.Checkpoint) (kept bool, err error) {
	data, err := ck.AppendBinary(nil)
	if err != nil {
		return false, fmt.Errorf("encode checkpoint: %w", err)
	}
	key := segment.CheckpointKey(ck.VID, ck.LSN)
	err = store.PutIfAbsent(ctx, key, data)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, objstore.ErrExists) {
		return false, &StoreError{Op: "write checkpoint " + key, Err: err}
	}
	old, err := store.Get(ctx, key)
	if err != nil {
		return false, &StoreError{Op: "read back checkpoint " + key, Err: err}
	}
	if bytes.Equal(old, data) {
		return false, nil
	}
	if have, err := segment.DecodeCheckpoint(old); err == nil && have.VID == ck.VID && have.LSN == ck.LSN && have.Commit.Hash == ck.Commit.Hash {
		return true, nil
	}
	if err := store.Put(ctx, key, data); err != nil {
		return false, &StoreError{Op: "replace unusable checkpoint " + key, Err: err}
	}
	return false, nil
}

// BuildCheckpoint builds the checkpoint of h's volume at lsn, which must end
// one of h's records after its checkpoint: h's checkpoint (or, if that one
// is unusable, an older one) updated with every page version of the
// records up to lsn. It reads each of those records' segment index (cached).
func (r *Reader) BuildCheckpoint(ctx context.Context, h fsm.History, lsn volume.LSN) (*segment.Checkpoint, error) {
	if lsn <= h.Checkpoint || lsn > h.Flushed {
		return nil, fmt.Errorf("%w: checkpoint of %s at %d outside (%d, %d]", ErrNotFlushed, h.VID, lsn, h.Checkpoint, h.Flushed)
	}
	pages := map[volume.PageIdx]deltaLoc{}
	var prev *segment.Checkpoint
	if h.Checkpoint > 0 {
		ck, err := r.Checkpoint(ctx, h.VID, h.Checkpoint)
		var bad *badCheckpointError
		switch {
		case errors.As(err, &bad):
			if h, err = r.olderView(ctx, h, lsn); err != nil {
				return nil, err
			}
			if h.Checkpoint > 0 { // the view may start from a delta
				if ck, err = r.viewCheckpoint(ctx, h.VID, h.Checkpoint); err != nil {
					return nil, err
				}
				prev = ck
			}
		case err != nil:
			return nil, err
		default:
			prev = ck
		}
	}
	if prev != nil {
		for _, p := range prev.Pages {
			pages[p.Idx] = deltaLoc{lsn: p.LSN, sid: prev.Segments[p.Segment], pos: p.Pos, crc: p.CRC}
		}
	}
	out := &segment.Checkpoint{VID: h.VID, LSN: lsn, Prev: h.Checkpoint}
	for i := range h.Froms {
		from, to := h.Range(i)
		if from > lsn {
			break
		}
		rec, err := r.record(ctx, h.VID, from)
		if err != nil {
			return nil, err
		}
		if rec.To != to {
			return nil, fmt.Errorf("%w: log record %s@%d ends at %d, history says %d", ErrLayout, h.VID, from, rec.To, to)
		}
		if to == lsn {
			c, _ := rec.Commit(lsn)
			out.Commit, out.LastFrom = c, from
		}
		if rec.Segment.IsZero() {
			continue
		}
		entries := 0
		for _, c := range rec.Commits {
			entries += c.Graft.Len()
		}
		ix, err := r.segmentIndex(ctx, h.VID, recordMeta{from: rec.From, to: rec.To, seg: rec.Segment, entries: entries})
		if err != nil {
			return nil, err
		}
		for pos, e := range ix.All() {
			// Entries ascend by (idx, lsn): the last one of an idx wins.
			pages[e.Idx] = deltaLoc{lsn: e.LSN, sid: rec.Segment, pos: uint32(pos), crc: e.CRC}
		}
	}
	if out.LastFrom == 0 {
		return nil, fmt.Errorf("%w: no log record of %s ends at %d", ErrLayout, h.VID, lsn)
	}
	if out.Prev >= out.LastFrom {
		out.Prev = 0 // built on an older checkpoint than h's; Prev is informational
	}
	fillPages(out, pages)
	return out, nil
}
