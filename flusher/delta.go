package flusher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Delta checkpoints ("deltas").
//
// After a round's log record of a volume is PUT, and before the round's end
// is proposed, the leader PUTs create-only the volume's delta at the
// record's end: segment.DeltaKey(vid, to), a segment.Checkpoint with Delta
// set whose Prev is the state's newest checkpoint C (its key is known, no
// LIST) and whose pages are every page version written in (C, to], each
// with its segment, position and CRC. A cold reader's head read is then
// LIST deltas/ (newest first) -> GET delta -> GET C only for a page the
// delta lacks -> one ranged GET of the page: at most 4 requests, however
// long the history and however far C is behind.
//
// A failed delta PUT fails the volume's part of the round, which stays
// open and is retried (idempotent: create-only, an equal delta already
// there counts as written), so every completed round has its delta. The
// delta grows with the pages changed since C; past Config.DeltaMaxPages
// the volume is a checkpoint candidate at once (deltaCandidates), and the
// next round's delta starts over from the new checkpoint.

// deltaLoc is where one page version lives (a checkpoint's or a delta's table).
type deltaLoc struct {
	lsn volume.LSN
	sid segment.ID
	pos uint32
	crc uint32
}

// deltaMemoVolumes bounds the memos a leader keeps: with many active
// volumes the least recently flushed ones lose theirs (and pay one GET).
const deltaMemoVolumes = 1024

// deltaMemo is the newest delta this leader wrote for a volume, kept so
// the next round extends it without reading anything.
type deltaMemo struct {
	lsn, base volume.LSN
	pages     map[volume.PageIdx]deltaLoc
}

// deltasOn reports whether rounds write deltas: they need checkpoints
// (their base, and the bound that keeps them small).
func (f *Flusher) deltasOn() bool {
	return f.cfg.CheckpointDeltas && f.reader != nil && (f.cfg.CheckpointRecords > 0 || f.cfg.CheckpointBytes > 0)
}

// writeDelta writes the delta of pv's volume at pv.To, after the round's
// log record rec is durable. sid and ix are the record's segment and its
// index (zero when the round wrote no pages).
func (f *Flusher) writeDelta(ctx context.Context, pv fsm.PlanVolume, rec *segment.Record, sid segment.ID, ix segment.Index) error {
	if !f.deltasOn() {
		return nil
	}
	if err := f.plantedDeltaCrash("before"); err != nil {
		return err
	}
	h := f.fsm.History(pv.VID)
	if h.Flushed != pv.From-1 {
		// The round is not the one after the state's watermark (it closed
		// meanwhile): nothing to describe.
		return nil
	}
	pages, err := f.deltaPagesBefore(ctx, h)
	if err != nil {
		return fmt.Errorf("delta of %s at %d: %w", pv.VID, pv.To, err)
	}
	for pos, e := range ix.All() {
		if plantedDeltaSkip(rec, e) {
			continue
		}
		pages[e.Idx] = deltaLoc{lsn: e.LSN, sid: sid, pos: uint32(pos), crc: e.CRC}
	}
	d := deltaFrom(pv.VID, pv.To, h.Checkpoint, pv.From, rec.Commits[len(rec.Commits)-1], pages)
	t := f.now()
	err = writeDelta(ctx, f.store, d)
	f.m.observePut("delta", t, err)
	if err != nil {
		return err
	}
	if err := f.plantedDeltaCrash("after"); err != nil {
		return err
	}
	f.deltaMemos.Add(pv.VID, &deltaMemo{lsn: pv.To, base: h.Checkpoint, pages: pages})
	f.mu.Lock()
	if f.cfg.DeltaMaxPages > 0 && len(pages) > f.cfg.DeltaMaxPages {
		f.deltaFull[pv.VID] = true
	}
	f.mu.Unlock()
	return nil
}

// deltaPagesBefore returns the pages written in (h.Checkpoint, h.Flushed]:
// from this leader's memo of the previous round, else from the delta at
// h.Flushed in the bucket (one GET), else from the records after the
// checkpoint (their segment indexes, cached by the reader). The result is
// the caller's to modify.
func (f *Flusher) deltaPagesBefore(ctx context.Context, h fsm.History) (map[volume.PageIdx]deltaLoc, error) {
	if h.Flushed == h.Checkpoint {
		return map[volume.PageIdx]deltaLoc{}, nil
	}
	if m, ok := f.deltaMemos.Get(h.VID); ok && m.lsn == h.Flushed && m.base == h.Checkpoint {
		return maps.Clone(m.pages), nil
	}
	if d, err := f.reader.Delta(ctx, h.VID, h.Flushed); err == nil && d.Prev == h.Checkpoint {
		return deltaPages(d), nil
	}
	pages := map[volume.PageIdx]deltaLoc{}
	for i := range h.Froms {
		from, to := h.Range(i)
		rec, err := f.reader.record(ctx, h.VID, from)
		if err != nil {
			return nil, err
		}
		if rec.To != to {
			return nil, fmt.Errorf("%w: log record %s@%d ends at %d, history says %d", ErrLayout, h.VID, from, rec.To, to)
		}
		if rec.Segment.IsZero() {
			continue
		}
		ix, err := f.reader.segmentIndex(ctx, h.VID, recordMeta{from: rec.From, to: rec.To, seg: rec.Segment, entries: recordEntries(rec)})
		if err != nil {
			return nil, err
		}
		for pos, e := range ix.All() {
			pages[e.Idx] = deltaLoc{lsn: e.LSN, sid: rec.Segment, pos: uint32(pos), crc: e.CRC}
		}
	}
	return pages, nil
}

func recordEntries(rec *segment.Record) int {
	n := 0
	for _, c := range rec.Commits {
		n += c.Graft.Len()
	}
	return n
}

// deltaPages returns the pages of a delta (or checkpoint) as a map.
func deltaPages(d *segment.Checkpoint) map[volume.PageIdx]deltaLoc {
	out := make(map[volume.PageIdx]deltaLoc, len(d.Pages))
	for _, p := range d.Pages {
		out[p.Idx] = deltaLoc{lsn: p.LSN, sid: d.Segments[p.Segment], pos: p.Pos, crc: p.CRC}
	}
	return out
}

// deltaFrom assembles the delta of vid at lsn over base.
func deltaFrom(vid volume.ID, lsn, base, lastFrom volume.LSN, commit segment.RecordCommit, pages map[volume.PageIdx]deltaLoc) *segment.Checkpoint {
	d := &segment.Checkpoint{VID: vid, LSN: lsn, Prev: base, LastFrom: lastFrom, Commit: commit, Delta: true}
	fillPages(d, pages)
	return d
}

// fillPages sets c's segment table and pages from a page map.
func fillPages(c *segment.Checkpoint, pages map[volume.PageIdx]deltaLoc) {
	sids := map[segment.ID]bool{}
	for _, l := range pages {
		sids[l.sid] = true
	}
	c.Segments = make([]segment.ID, 0, len(sids))
	for sid := range sids {
		c.Segments = append(c.Segments, sid)
	}
	slices.SortFunc(c.Segments, func(a, b segment.ID) int { return bytes.Compare(a[:], b[:]) })
	ord := make(map[segment.ID]uint32, len(c.Segments))
	for i, sid := range c.Segments {
		ord[sid] = uint32(i)
	}
	c.Pages = make([]segment.CheckpointPage, 0, len(pages))
	for idx, l := range pages {
		c.Pages = append(c.Pages, segment.CheckpointPage{Idx: idx, LSN: l.lsn, Segment: ord[l.sid], Pos: l.pos, CRC: l.crc})
	}
	slices.SortFunc(c.Pages, func(a, b segment.CheckpointPage) int { return int(int64(a.Idx) - int64(b.Idx)) })
}

// writeDelta stores d create-only. A delta already there for the same
// snapshot (our earlier attempt whose response was lost, another leader's)
// is kept; one that does not decode is replaced.
func writeDelta(ctx context.Context, store objstore.Store, d *segment.Checkpoint) error {
	data, err := d.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("encode delta: %w", err)
	}
	key := segment.DeltaKey(d.VID, d.LSN)
	err = store.PutIfAbsent(ctx, key, data)
	if err == nil {
		return nil
	}
	if !errors.Is(err, objstore.ErrExists) {
		return &StoreError{Op: "write delta " + key, Err: err}
	}
	old, err := store.Get(ctx, key)
	if err != nil {
		return &StoreError{Op: "read back delta " + key, Err: err}
	}
	if bytes.Equal(old, data) {
		return nil
	}
	if have, err := segment.DecodeCheckpoint(old); err == nil && have.Delta && have.VID == d.VID && have.LSN == d.LSN && have.Commit.Hash == d.Commit.Hash {
		return nil
	}
	if err := store.Put(ctx, key, data); err != nil {
		return &StoreError{Op: "replace unusable delta " + key, Err: err}
	}
	return nil
}

// deltaCandidates adds to cands the volumes whose delta passed
// Config.DeltaMaxPages: their checkpoint is due now, whatever the count and
// byte triggers say.
func (f *Flusher) deltaCandidates(cands []volume.ID) []volume.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	for vid := range f.deltaFull {
		delete(f.deltaFull, vid)
		if !slices.Contains(cands, vid) {
			cands = append(cands, vid)
		}
	}
	return cands
}

// plantedDeltaCrash is a fault-injection seam for tests: a non-nil error
// stops a delta write "before" its PUT or "after" it (the round then
// fails before its end is proposed).
func (f *Flusher) plantedDeltaCrash(step string) error {
	if f.deltaCrash != nil {
		return f.deltaCrash(step)
	}
	return nil
}

// dropStaleDeltas deletes a volume's deltas once per leadership when this
// leader does not write deltas: a delta left from when they were on would
// otherwise stay the newest one, and clusterless head reads would answer
// its (older) snapshot. It runs before the round's log record is PUT.
func (f *Flusher) dropStaleDeltas(ctx context.Context, vid volume.ID) error {
	if f.deltasOn() {
		return nil
	}
	f.mu.Lock()
	done := f.deltasDropped[vid]
	f.mu.Unlock()
	if done {
		return nil
	}
	objs, err := f.store.List(ctx, segment.DeltaPrefix(vid))
	if err != nil {
		return &StoreError{Op: "list deltas of " + vid.String(), Err: err}
	}
	for _, o := range objs {
		if err := f.store.Delete(ctx, o.Key); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return &StoreError{Op: "delete stale delta " + o.Key, Err: err}
		}
	}
	if len(objs) > 0 {
		f.log.Info("deleted deltas left from when they were on", "vid", vid, "count", len(objs))
	}
	f.mu.Lock()
	f.deltasDropped[vid] = true
	f.mu.Unlock()
	return nil
}

// indexOf decodes the index of an encoded segment (the one a round just
// built), without verifying its pages again.
func indexOf(seg []byte) (segment.Index, error) {
	if len(seg) < segment.FooterSize {
		return segment.Index{}, fmt.Errorf("%w: segment of %d bytes", ErrLayout, len(seg))
	}
	f, err := segment.DecodeFooter(seg[len(seg)-segment.FooterSize:])
	if err != nil {
		return segment.Index{}, err
	}
	off, n := segment.IndexRange(f)
	if off+n+segment.FooterSize != int64(len(seg)) {
		return segment.Index{}, fmt.Errorf("%w: segment of %d bytes, footer says %d", ErrLayout, len(seg), off+n+segment.FooterSize)
	}
	return segment.DecodeIndex(f, seg[off:off+n])
}
