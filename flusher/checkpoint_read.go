package flusher

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Finding checkpoints.
//
// Checkpoint keys carry the inverted LSN (segment.CheckpointKey), so a LIST
// of a volume's checkpoint prefix returns the newest first, and a LIST
// starting at CheckpointKey(vid, L) returns the newest checkpoint at or
// below L first: one request, however many checkpoints exist. We chose
// this over a create-only pointer object per checkpoint generation because
// finding the newest pointer needs either a LIST anyway or probing
// generation numbers until a 404 (O(generations) GETs, or a known
// generation kept somewhere mutable).
//
// Why it is safe on a store whose LIST may lag writes (S3 before 2020,
// many S3-compatible stores): checkpoints are immutable and written
// create-only, so any key a LIST shows is a complete object (PUTs are
// atomic). A LIST that lags can only omit the newest checkpoints; the
// reader then starts from an older one and reads more log records, which
// are still there (GC removes a checkpoint's predecessors and their records
// only after a grace period longer than any listing lag, and never the ones
// a retained snapshot needs). A listed checkpoint that fails its checksum,
// or is gone by the time it is read, is skipped for the next one in the
// same listing (the reader asks for a few). Inside the cluster the newest
// checkpoint comes from the Raft state (fsm.History.Checkpoint), so a LIST
// is needed only for snapshots older than it and for clusterless readers.

// ckptListLimit is how many checkpoint keys one listing asks for: the
// newest (with its generations) and fallbacks for checkpoints that fail
// their checksum.
const ckptListLimit = 16

// logListLimit is how many log keys one listing page asks for.
const logListLimit = 1000

// viewKey names a cached bucket view of an old snapshot.
type viewKey struct {
	vid    volume.ID
	ckptAt volume.LSN
	at     volume.LSN
}

// badCheckpointError is a checkpoint that cannot be used: it fails its
// checksum or does not decode, or it is missing though named. Readers fall
// back to the one before it.
type badCheckpointError struct {
	vid volume.ID
	lsn volume.LSN
	err error
}

func (e *badCheckpointError) Error() string {
	return fmt.Sprintf("checkpoint %s@%d: %v", e.vid, e.lsn, e.err)
}

func (e *badCheckpointError) Unwrap() error { return e.err }

// BadCheckpoints returns how many checkpoints this reader found unusable
// (failing their checksum, or missing though named) and fell back from.
func (r *Reader) BadCheckpoints() uint64 { return r.badCkpts.Load() }

// Checkpoint returns the decoded checkpoint of vid at lsn, in its newest
// usable generation. A checkpoint whose every generation fails its
// checksum, does not decode or is missing wraps badCheckpointError; each
// bad one is counted in BadCheckpoints and logged.
//
// Generations (segment.CheckpointGenKey): compaction rewrites retained
// checkpoints to point at compacted copies of their page versions, so one
// LSN may have several generations, each a complete and correct
// description of the same snapshot; older ones name segments GC deletes a
// grace period after the next generation appeared. A cached or generation-0
// checkpoint is therefore never wrong about a page's version, only possibly
// about where it lives: the fast path reads generation 0 by key (no LIST:
// the head read stays at 4 requests), and a read that then finds a segment
// missing forgets the volume's views (forgetViews), after which this lists
// the generations and takes the newest.
func (r *Reader) Checkpoint(ctx context.Context, vid volume.ID, lsn volume.LSN) (*segment.Checkpoint, error) {
	k := recordKey{vid, lsn}
	if ck, ok := r.ckpts.Get(k); ok {
		return ck, nil
	}
	var first error // generation 0's, read by key
	if _, listed := r.listGens.Get(vid); !listed {
		ck, err := r.checkpointGen(ctx, vid, lsn, 0, false)
		if err == nil {
			return ck, nil
		}
		var bad *badCheckpointError
		if !errors.As(err, &bad) {
			return nil, err
		}
		first = err // gone or unusable: a later generation may be fine
	}
	objs, err := objstore.ListAfter(ctx, r.store, segment.CheckpointPrefix(vid), segment.CheckpointListStart(vid, lsn), ckptListLimit)
	if err != nil {
		return nil, &StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	var gens []uint64
	for _, g := range groupCheckpoints(objs) {
		if g.lsn == lsn {
			gens = g.gens
		}
	}
	if first != nil && !errors.Is(first, objstore.ErrNotFound) {
		// Generation 0 is there but unusable (reported): not again.
		gens = slices.DeleteFunc(gens, func(g uint64) bool { return g == 0 })
		if len(gens) == 0 {
			return nil, first
		}
	}
	return r.checkpointGens(ctx, vid, lsn, gens)
}

// checkpointGens returns the newest usable of the listed generations gens
// (newest first) of vid's checkpoint at lsn.
func (r *Reader) checkpointGens(ctx context.Context, vid volume.ID, lsn volume.LSN, gens []uint64) (*segment.Checkpoint, error) {
	if ck, ok := r.ckpts.Get(recordKey{vid, lsn}); ok && len(gens) > 0 && ck.Gen >= gens[0] {
		return ck, nil
	}
	var last error = &badCheckpointError{vid: vid, lsn: lsn, err: fmt.Errorf("%w: no generation listed", objstore.ErrNotFound)}
	for _, gen := range gens {
		ck, err := r.checkpointGen(ctx, vid, lsn, gen, true)
		if err == nil {
			return ck, nil
		}
		var bad *badCheckpointError
		if !errors.As(err, &bad) {
			return nil, err
		}
		last = err
	}
	if len(gens) == 0 {
		r.reportBad(vid, lsn, segment.CheckpointKey(vid, lsn), last)
	}
	return nil, last
}

// checkpointGen reads generation gen of vid's checkpoint at lsn and caches
// it. A missing one is reported as bad only when report is set (it was
// listed): generation 0 is read unlisted on the fast path.
func (r *Reader) checkpointGen(ctx context.Context, vid volume.ID, lsn volume.LSN, gen uint64, report bool) (*segment.Checkpoint, error) {
	ck, key, err := r.getCheckpoint(ctx, vid, lsn, gen)
	var bad *badCheckpointError
	if errors.As(err, &bad) && (report || !errors.Is(err, objstore.ErrNotFound)) {
		r.reportBad(vid, lsn, key, bad.err)
	}
	if err != nil {
		return nil, err
	}
	r.ckpts.Add(recordKey{vid, lsn}, ck)
	return ck, nil
}

// getCheckpoint reads and checks generation gen of vid's checkpoint at lsn
// (one GET, no cache). A missing, undecodable or misplaced one is a
// *badCheckpointError.
func (r *Reader) getCheckpoint(ctx context.Context, vid volume.ID, lsn volume.LSN, gen uint64) (*segment.Checkpoint, string, error) {
	key := segment.CheckpointGenKey(vid, lsn, gen)
	b, err := r.store.Get(ctx, key)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, key, &badCheckpointError{vid: vid, lsn: lsn, err: &StoreError{Op: "get checkpoint " + key, Err: err}}
		}
		return nil, key, &StoreError{Op: "get checkpoint " + key, Err: err}
	}
	ck, err := segment.DecodeCheckpoint(b)
	if err == nil && (ck.VID != vid || ck.LSN != lsn || ck.Delta) {
		err = fmt.Errorf("%w: checkpoint at %s holds %s@%d (delta %v)", ErrLayout, key, ck.VID, ck.LSN, ck.Delta)
	}
	if err != nil {
		return nil, key, &badCheckpointError{vid: vid, lsn: lsn, err: err}
	}
	ck.Gen = gen
	return &ck, key, nil
}

// genKey names one generation of one checkpoint.
type genKey struct {
	vid volume.ID
	lsn volume.LSN
	gen uint64
}

// checkpointAtGen returns generation gen of vid's checkpoint at lsn, from
// the caches when there, without making it the one Checkpoint returns (GC
// reads superseded generations to learn what they name).
func (r *Reader) checkpointAtGen(ctx context.Context, vid volume.ID, lsn volume.LSN, gen uint64) (*segment.Checkpoint, error) {
	if ck, ok := r.ckpts.Get(recordKey{vid, lsn}); ok && ck.Gen == gen {
		return ck, nil
	}
	k := genKey{vid, lsn, gen}
	if ck, ok := r.oldGens.Get(k); ok {
		return ck, nil
	}
	ck, _, err := r.getCheckpoint(ctx, vid, lsn, gen)
	if err != nil {
		return nil, err
	}
	r.oldGens.Add(k, ck)
	return ck, nil
}

// ckptGroup is one checkpoint LSN in a listing: its generations, newest
// first, with their listing entries.
type ckptGroup struct {
	lsn  volume.LSN
	gens []uint64
	objs []objstore.ObjectInfo
}

// groupCheckpoints groups a checkpoint listing (newest LSN first, one LSN's
// keys together) by LSN, skipping keys that do not parse. The last group
// may be incomplete when the listing was cut short.
func groupCheckpoints(objs []objstore.ObjectInfo) []ckptGroup {
	var out []ckptGroup
	for _, o := range objs {
		_, lsn, gen, err := segment.ParseCheckpointGenKey(o.Key)
		if err != nil {
			continue
		}
		if n := len(out); n == 0 || out[n-1].lsn != lsn {
			out = append(out, ckptGroup{lsn: lsn})
		}
		g := &out[len(out)-1]
		g.gens = append(g.gens, gen)
		g.objs = append(g.objs, o)
	}
	for i := range out {
		g := &out[i]
		// Listed: generation 0, then the others newest first.
		if len(g.gens) > 1 && g.gens[0] == 0 {
			g.gens = append(g.gens[1:], 0)
			g.objs = append(g.objs[1:], g.objs[0])
		}
	}
	return out
}

func (r *Reader) reportBad(vid volume.ID, lsn volume.LSN, key string, err error) {
	r.badCkpts.Add(1)
	r.log.Error("checkpoint unusable; falling back to the one before it", "vid", vid, "lsn", lsn, "key", key, "err", err)
}

// checkpointOf returns h's checkpoint.
func (r *Reader) checkpointOf(ctx context.Context, h fsm.History) (*segment.Checkpoint, error) {
	if h.Checkpoint == 0 {
		return nil, fmt.Errorf("%w: %s has no checkpoint", ErrNotFlushed, h.VID)
	}
	return r.viewCheckpoint(ctx, h.VID, h.Checkpoint)
}

// History returns the volume's flushed history as the bucket holds it: the
// newest checkpoint (one LIST), the log records after it (one LIST per
// 1000 records) and the last record's end (one GET, none when no record
// follows the checkpoint). A volume with nothing flushed has an empty
// history. The newest checkpoint is not read here; a read that needs it and
// finds it unusable falls back to an older one.
func (r *Reader) History(ctx context.Context, vid volume.ID) (fsm.History, error) {
	objs, err := objstore.ListAfter(ctx, r.store, segment.CheckpointPrefix(vid), "", 1)
	if err != nil {
		return fsm.History{}, &StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	h := fsm.History{VID: vid}
	if len(objs) > 0 {
		v, lsn, err := segment.ParseCheckpointKey(objs[0].Key)
		if err != nil || v != vid {
			return fsm.History{}, fmt.Errorf("%w: unexpected key %q among the checkpoints of %s", ErrLayout, objs[0].Key, vid)
		}
		h.Checkpoint, h.Flushed = lsn, lsn
	}
	if err := r.listRecords(ctx, &h, 0); err != nil {
		return fsm.History{}, err
	}
	if n := len(h.Froms); n > 0 {
		last, err := r.record(ctx, vid, h.Froms[n-1])
		if err != nil {
			return fsm.History{}, err
		}
		h.Flushed = last.To
	}
	return h, nil
}

// listRecords appends to h.Froms the log records after h.Checkpoint, in
// order, stopping after the first record starting above stop (0: list
// all). The first must start at h.Checkpoint+1.
func (r *Reader) listRecords(ctx context.Context, h *fsm.History, stop volume.LSN) error {
	after := ""
	if h.Checkpoint > 0 {
		after = segment.LogKey(h.VID, h.Checkpoint)
	}
	for {
		objs, err := objstore.ListAfter(ctx, r.store, segment.LogPrefix(h.VID), after, logListLimit)
		if err != nil {
			return &StoreError{Op: "list log of " + h.VID.String(), Err: err}
		}
		for _, o := range objs {
			v, from, err := segment.ParseLogKey(o.Key)
			if err != nil || v != h.VID {
				return fmt.Errorf("%w: unexpected key %q in the log of %s", ErrLayout, o.Key, h.VID)
			}
			if len(h.Froms) == 0 && from != h.Checkpoint+1 {
				if h.Checkpoint == 0 {
					if stop > 0 && stop+1 < from {
						// Retention deleted the history up to the
						// checkpoint the log now starts after (GC's base):
						// the same answer the cluster gives below its
						// horizon.
						return &fsm.RetentionError{VID: h.VID, LSN: stop, Oldest: from - 1}
					}
					// The history before it was deleted by retention (or
					// its checkpoints are unusable): reading from here would
					// miss every page written before.
					return fmt.Errorf("%w: the log of %s starts at %d and no usable checkpoint precedes it", ErrNotFlushed, h.VID, from)
				}
				return fmt.Errorf("%w: the log of %s after checkpoint %d starts at %d", ErrLayout, h.VID, h.Checkpoint, from)
			}
			h.Froms = append(h.Froms, from)
			if stop > 0 && from > stop {
				return nil
			}
		}
		if len(objs) < logListLimit {
			return nil
		}
		after = objs[len(objs)-1].Key
	}
}

// bucketView returns a history of vid read from the bucket alone that
// starts at the newest usable checkpoint at or below ckptAt (or the start
// of the log) and ends with the record holding at (or at the checkpoint,
// when at is the checkpoint). Views are cached: every object they name is
// immutable.
func (r *Reader) bucketView(ctx context.Context, vid volume.ID, ckptAt, at volume.LSN) (fsm.History, error) {
	key := viewKey{vid: vid, ckptAt: ckptAt, at: at}
	if h, ok := r.views.Get(key); ok {
		return h, nil
	}
	if h, ok, err := r.deltaView(ctx, vid, ckptAt, at); err != nil || ok {
		if err == nil {
			r.views.Add(key, h)
		}
		return h, err
	}
	h := fsm.History{VID: vid}
	objs, err := objstore.ListAfter(ctx, r.store, segment.CheckpointPrefix(vid), segment.CheckpointListStart(vid, ckptAt), ckptListLimit)
	if err != nil {
		return fsm.History{}, &StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	for _, g := range groupCheckpoints(objs) {
		if g.lsn > ckptAt {
			continue
		}
		if _, err := r.checkpointGens(ctx, vid, g.lsn, g.gens); err != nil {
			var bad *badCheckpointError
			if errors.As(err, &bad) {
				continue // reported; try the one before it
			}
			return fsm.History{}, err
		}
		h.Checkpoint = g.lsn
		break
	}
	if h.Checkpoint == at && at > 0 {
		h.Flushed = at
		r.views.Add(key, h)
		return h, nil
	}
	if err := r.listRecords(ctx, &h, at); err != nil {
		return fsm.History{}, err
	}
	// The last record listed either starts above at (drop it: the one
	// before holds at and ends where it starts) or is the volume's last.
	switch n := len(h.Froms); {
	case n == 0:
		if h.Checkpoint == 0 {
			if oldest := r.oldestListedCheckpoint(ctx, vid); oldest > at {
				// The whole log was folded into checkpoints and GC took
				// everything below the oldest one.
				return fsm.History{}, &fsm.RetentionError{VID: vid, LSN: at, Oldest: oldest}
			}
		}
		return fsm.History{}, fmt.Errorf("%w: lsn %d of %s (no log record after checkpoint %d)", ErrNotFlushed, at, vid, h.Checkpoint)
	case h.Froms[n-1] > at:
		h.Flushed = h.Froms[n-1] - 1
		h.Froms = h.Froms[:n-1]
		if len(h.Froms) == 0 {
			return fsm.History{}, fmt.Errorf("%w: lsn %d of %s is below its oldest readable record", ErrNotFlushed, at, vid)
		}
	default:
		last, err := r.record(ctx, vid, h.Froms[n-1])
		if err != nil {
			return fsm.History{}, err
		}
		h.Flushed = last.To
		if at > h.Flushed {
			return fsm.History{}, fmt.Errorf("%w: lsn %d of %s (flushed up to %d)", ErrNotFlushed, at, vid, h.Flushed)
		}
	}
	r.views.Add(key, h)
	return h, nil
}

// viewFor returns the history to read lsn from: h itself when lsn is after
// its checkpoint, else a bucket view from the newest checkpoint at or below
// lsn.
func (r *Reader) viewFor(ctx context.Context, h fsm.History, lsn volume.LSN) (fsm.History, error) {
	switch {
	case lsn > h.Checkpoint:
		if v, ok := r.coldView(ctx, h, lsn); ok {
			return v, nil
		}
		return h, nil
	case lsn == 0:
		return h, nil
	case lsn == h.Checkpoint:
		return fsm.History{VID: h.VID, Checkpoint: lsn, Flushed: lsn}, nil
	}
	return r.bucketView(ctx, h.VID, lsn, lsn)
}

// rangeView is viewFor for a walk over [lsn, until]: below h's checkpoint
// one bucket view covers the records from the newest checkpoint at or below
// lsn up to min(until, h's checkpoint), so a walk over old history lists
// the log once per checkpoint interval, not once per record.
func (r *Reader) rangeView(ctx context.Context, h fsm.History, lsn, until volume.LSN) (fsm.History, error) {
	if lsn >= h.Checkpoint || lsn == 0 {
		return r.viewFor(ctx, h, lsn)
	}
	return r.bucketView(ctx, h.VID, lsn, min(until, h.Checkpoint))
}

// olderView returns a history equivalent to h for reading lsn that does not
// use h's checkpoint (found unusable): the newest usable checkpoint before
// it, the records from there to h's checkpoint, then h's records.
func (r *Reader) olderView(ctx context.Context, h fsm.History, lsn volume.LSN) (fsm.History, error) {
	if h.Checkpoint == 0 {
		return fsm.History{}, fmt.Errorf("%w: %s has no checkpoint to fall back from", ErrLayout, h.VID)
	}
	v, err := r.bucketView(ctx, h.VID, h.Checkpoint-1, h.Checkpoint)
	if err != nil {
		return fsm.History{}, fmt.Errorf("fall back from checkpoint %s@%d: %w", h.VID, h.Checkpoint, err)
	}
	if v.Flushed != h.Checkpoint {
		return fsm.History{}, fmt.Errorf("%w: no log record of %s ends at checkpoint %d", ErrLayout, h.VID, h.Checkpoint)
	}
	if lsn > h.Checkpoint {
		v.Froms = append(v.Froms[:len(v.Froms):len(v.Froms)], h.Froms...)
		v.Flushed = h.Flushed
	}
	return v, nil
}

// readCheckpointPage reads one page a checkpoint locates, verified against
// the CRC the checkpoint carries: one ranged GET, no segment index.
func (r *Reader) readCheckpointPage(ctx context.Context, vid volume.ID, ck *segment.Checkpoint, p segment.CheckpointPage) (fsm.PageVersion, error) {
	sid := ck.Segments[p.Segment]
	pk := pageKey{sid, int(p.Pos)}
	if data, ok := r.pages.Get(pk); ok {
		return fsm.PageVersion{Idx: p.Idx, LSN: p.LSN, Data: data}, nil
	}
	off, n := segment.PageRange(int(p.Pos))
	data, err := r.store.GetRange(ctx, segment.SegmentKey(vid, sid), off, n)
	if err != nil {
		return fsm.PageVersion{}, &StoreError{Op: fmt.Sprintf("read page %d of segment %s", p.Idx, sid), Err: err}
	}
	if err := segment.VerifyPage(p.Entry(), data); err != nil {
		return fsm.PageVersion{}, fmt.Errorf("segment %s of %s (via checkpoint %d): %w", sid, vid, ck.LSN, err)
	}
	r.pages.Add(pk, data)
	return fsm.PageVersion{Idx: p.Idx, LSN: p.LSN, Data: data}, nil
}

// newestCheckpoint returns the volume's newest usable checkpoint (0 and nil:
// none), skipping unusable ones.
func (r *Reader) newestCheckpoint(ctx context.Context, vid volume.ID) (volume.LSN, *segment.Checkpoint, error) {
	objs, err := objstore.ListAfter(ctx, r.store, segment.CheckpointPrefix(vid), "", ckptListLimit)
	if err != nil {
		return 0, nil, &StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	for _, g := range groupCheckpoints(objs) {
		ck, err := r.checkpointGens(ctx, vid, g.lsn, g.gens)
		var bad *badCheckpointError
		switch {
		case errors.As(err, &bad):
			continue
		case err != nil:
			return 0, nil, err
		}
		return g.lsn, ck, nil
	}
	return 0, nil, nil
}

// oldestListedCheckpoint returns the lsn of the volume's oldest checkpoint
// key (0: none, or the listing failed). Used only to word an error.
func (r *Reader) oldestListedCheckpoint(ctx context.Context, vid volume.ID) volume.LSN {
	objs, err := r.store.List(ctx, segment.CheckpointPrefix(vid))
	if err != nil || len(objs) == 0 {
		return 0
	}
	_, lsn, err := segment.ParseCheckpointKey(objs[len(objs)-1].Key)
	if err != nil {
		return 0
	}
	return lsn
}
