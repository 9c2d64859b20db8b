package flusher

import (
	"context"
	"errors"
	"fmt"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Reading through deltas.
//
// A delta at D over base C (segment.Checkpoint with Delta set) and the
// checkpoint at C together are a complete snapshot at D. The reader merges
// them into the full checkpoint at D (deltaCheckpoint) and caches it as if
// a checkpoint had been written at D: every read path that starts from a
// checkpoint (ReadPages, Commit, Graft, bucket views) then starts from D,
// and reads only the log records after D, of which there are none at a
// round end. The merged checkpoint is what BuildCheckpoint would write at D
// (same page versions, same locations).
//
// Finding deltas is the same as finding checkpoints (inverted-LSN keys,
// newest first in one LIST, see checkpoint_read.go) and is safe on a LIST
// that lags for the same reasons: deltas are immutable and created
// atomically; a lagging LIST omits the newest, and the reader answers an
// older (still flushed and retained) snapshot or reads more records; a
// delta that fails its checksum, is gone, or whose base is unusable is
// logged, counted (BadCheckpoints) and skipped for the next listed one,
// and with none usable the reader falls back to the checkpoint path.

// errNoDelta means no delta is stored at the asked LSN.
var errNoDelta = errors.New("flusher: no delta")

// Delta returns the decoded delta of vid at lsn. A missing delta wraps
// errNoDelta (not counted: deltas are optional); one that fails its
// checksum, does not decode or is not a delta of vid at lsn is counted in
// BadCheckpoints, logged and returned as a *badCheckpointError.
func (r *Reader) Delta(ctx context.Context, vid volume.ID, lsn volume.LSN) (*segment.Checkpoint, error) {
	k := recordKey{vid, lsn}
	if d, ok := r.deltas.Get(k); ok {
		return d, nil
	}
	if _, ok := r.noDelta.Get(k); ok {
		return nil, fmt.Errorf("%w at %s@%d", errNoDelta, vid, lsn)
	}
	key := segment.DeltaKey(vid, lsn)
	b, err := r.store.Get(ctx, key)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			r.noDelta.Add(k, struct{}{})
			return nil, fmt.Errorf("%w at %s@%d", errNoDelta, vid, lsn)
		}
		return nil, &StoreError{Op: "get delta " + key, Err: err}
	}
	d, err := segment.DecodeCheckpoint(b)
	if err == nil && (!d.Delta || d.VID != vid || d.LSN != lsn) {
		err = fmt.Errorf("%w: delta at %s holds %s@%d (delta %v)", ErrLayout, key, d.VID, d.LSN, d.Delta)
	}
	if err != nil {
		r.badCkpts.Add(1)
		r.log.Error("delta unusable; falling back", "vid", vid, "lsn", lsn, "key", key, "err", err)
		return nil, &badCheckpointError{vid: vid, lsn: lsn, err: err}
	}
	r.deltas.Add(k, &d)
	return &d, nil
}

// viewCheckpoint is the checkpoint a read view starts from: one assembled
// from a delta (a view whose Checkpoint is a delta's lsn) or a stored one.
// Assembled checkpoints live in their own cache and are never returned by
// Checkpoint, which GC and BuildCheckpoint use: those need the stored
// object (its segment table), not an equivalent description.
func (r *Reader) viewCheckpoint(ctx context.Context, vid volume.ID, lsn volume.LSN) (*segment.Checkpoint, error) {
	if ck, ok := r.merged.Get(recordKey{vid, lsn}); ok {
		return ck, nil
	}
	ck, err := r.Checkpoint(ctx, vid, lsn)
	var bad *badCheckpointError
	if errors.As(err, &bad) && errors.Is(err, objstore.ErrNotFound) {
		// No stored checkpoint at lsn: the view started from a delta (its
		// assembled checkpoint was evicted since).
		if dck, derr := r.deltaCheckpoint(ctx, vid, lsn); derr == nil {
			return dck, nil
		}
	}
	return ck, err
}

// deltaCheckpoint returns the complete checkpoint at lsn assembled from the
// delta at lsn and its base checkpoint, cached for viewCheckpoint. A
// missing delta wraps errNoDelta; an unusable delta or base is a
// *badCheckpointError.
func (r *Reader) deltaCheckpoint(ctx context.Context, vid volume.ID, lsn volume.LSN) (*segment.Checkpoint, error) {
	if ck, ok := r.merged.Get(recordKey{vid, lsn}); ok {
		return ck, nil
	}
	d, err := r.Delta(ctx, vid, lsn)
	if err != nil {
		return nil, err
	}
	pages := deltaPages(d)
	if d.Prev > 0 {
		base, err := r.Checkpoint(ctx, vid, d.Prev)
		if err != nil {
			var bad *badCheckpointError
			if errors.As(err, &bad) {
				return nil, &badCheckpointError{vid: vid, lsn: lsn, err: fmt.Errorf("base of delta: %w", err)}
			}
			return nil, err
		}
		for _, p := range base.Pages {
			if _, ok := pages[p.Idx]; !ok {
				pages[p.Idx] = deltaLoc{lsn: p.LSN, sid: base.Segments[p.Segment], pos: p.Pos, crc: p.CRC}
			}
		}
	}
	ck := &segment.Checkpoint{VID: vid, LSN: lsn, Prev: d.Prev, LastFrom: d.LastFrom, Commit: d.Commit}
	fillPages(ck, pages)
	r.merged.Add(recordKey{vid, lsn}, ck)
	return ck, nil
}

// newestDelta returns the newest usable delta at or below at (0: the
// newest of all) as a complete checkpoint: one LIST, then GETs of the
// delta and its base. It returns 0 and nil when there is none usable.
// first reports whether it is the first one listed (none newer was
// skipped as unusable).
func (r *Reader) newestDelta(ctx context.Context, vid volume.ID, at volume.LSN) (lsn volume.LSN, first bool, err error) {
	after := ""
	if at > 0 {
		after = segment.DeltaKey(vid, at+1)
	}
	objs, err := objstore.ListAfter(ctx, r.store, segment.DeltaPrefix(vid), after, ckptListLimit)
	if err != nil {
		return 0, false, &StoreError{Op: "list deltas of " + vid.String(), Err: err}
	}
	first = true
	for _, o := range objs {
		v, lsn, err := segment.ParseDeltaKey(o.Key)
		if err != nil || v != vid || (at > 0 && lsn > at) {
			continue
		}
		_, err = r.deltaCheckpoint(ctx, vid, lsn)
		var bad *badCheckpointError
		switch {
		case errors.Is(err, errNoDelta), errors.As(err, &bad):
			first = false
			continue // gone since the listing (GC), or reported: the one before it
		case err != nil:
			return 0, false, err
		}
		return lsn, first, nil
	}
	return 0, false, nil
}

// headView is the bucket's head history through deltas: the newest delta
// alone when it is usable (LIST + GET delta + GET base), else the newest
// usable delta and the log records after it, so that a newest delta that
// fails its checksum (or lost its base) costs more requests but never an
// older head. ok is false when no delta is usable.
func (r *Reader) headView(ctx context.Context, vid volume.ID) (fsm.History, bool, error) {
	d, first, err := r.newestDelta(ctx, vid, 0)
	if err != nil || d == 0 {
		return fsm.History{}, false, err
	}
	h := fsm.History{VID: vid, Checkpoint: d, Flushed: d}
	if first {
		return h, true, nil
	}
	if err := r.listRecords(ctx, &h, 0); err != nil {
		return fsm.History{}, false, err
	}
	if n := len(h.Froms); n > 0 {
		last, err := r.record(ctx, vid, h.Froms[n-1])
		if err != nil {
			return fsm.History{}, false, err
		}
		h.Flushed = last.To
	}
	return h, true, nil
}

// deltaView is bucketView through deltas: the newest usable delta at or
// below ckptAt and the records after it up to at. ok is false when no
// usable delta was found (the caller takes the checkpoint path).
func (r *Reader) deltaView(ctx context.Context, vid volume.ID, ckptAt, at volume.LSN) (fsm.History, bool, error) {
	d, _, err := r.newestDelta(ctx, vid, ckptAt)
	if err != nil || d == 0 {
		return fsm.History{}, false, err
	}
	h := fsm.History{VID: vid, Checkpoint: d, Flushed: d}
	if at <= d {
		return h, true, nil
	}
	// Deltas end rounds: the record after d starts at d+1, and usually
	// holds at (one GET, no LIST).
	if rec, err := r.record(ctx, vid, d+1); err == nil && rec.To >= at {
		h.Froms, h.Flushed = []volume.LSN{d + 1}, rec.To
		return h, true, nil
	}
	if err := r.listRecords(ctx, &h, at); err != nil {
		return fsm.History{}, false, err
	}
	switch n := len(h.Froms); {
	case n == 0:
		return fsm.History{}, false, fmt.Errorf("%w: lsn %d of %s (no log record after delta %d)", ErrNotFlushed, at, vid, d)
	case h.Froms[n-1] > at:
		h.Flushed = h.Froms[n-1] - 1
		h.Froms = h.Froms[:n-1]
	default:
		last, err := r.record(ctx, vid, h.Froms[n-1])
		if err != nil {
			return fsm.History{}, false, err
		}
		h.Flushed = last.To
		if at > h.Flushed {
			return fsm.History{}, false, fmt.Errorf("%w: lsn %d of %s (flushed up to %d)", ErrNotFlushed, at, vid, h.Flushed)
		}
	}
	return h, true, nil
}

// coldView is viewFor for the first read at lsn > h.Checkpoint of a volume
// whose page index is not loaded (a restarted node's first read): the delta at the end of
// the record before the one holding lsn, or at lsn itself, is fetched by
// key (the state knows every record boundary: no LIST), so the read needs
// the delta, its base and at most one record instead of every record after
// the checkpoint. ok is false when there is no such delta.
func (r *Reader) coldView(ctx context.Context, h fsm.History, lsn volume.LSN) (fsm.History, bool) {
	i, ok := h.Locate(lsn)
	if !ok {
		return fsm.History{}, false
	}
	vk := volKey{h.VID, h.Checkpoint}
	r.mu.Lock()
	vi, _ := r.vols.Peek(vk)
	served := r.coldServed.Contains(vk)
	if !served {
		r.coldServed.Add(vk, struct{}{})
	}
	r.mu.Unlock()
	if served || (vi != nil && vi.covers(h, i)) {
		// Warm, or the first read went through the delta: the page index
		// (loaded once, then extended record by record) answers the rest.
		return fsm.History{}, false
	}
	from, to := h.Range(i)
	d := from - 1
	if to == lsn {
		d = lsn
	}
	if d <= h.Checkpoint {
		return fsm.History{}, false
	}
	if _, err := r.deltaCheckpoint(ctx, h.VID, d); err != nil {
		return fsm.History{}, false // missing or unusable (reported): the records answer
	}
	v := fsm.History{VID: h.VID, Horizon: h.Horizon, Checkpoint: d, Flushed: d}
	if lsn > d {
		v.Froms, v.Flushed = []volume.LSN{from}, to
	}
	return v, true
}
