package flusher

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Compaction.
//
// At checkpoint time, before the checkpoint's PUT, the leader picks the
// segments the new checkpoint C points into whose live fraction (pages C
// points into / page versions in the segment, from one LIST of the volume's
// segments) is below Config.CompactBelow. Every version C names is at or
// below C, so all of them come from records at or below C or from earlier
// compacted segments. It copies exactly those live versions (same idx,
// lsn, bytes, so the same CRC) into new segments S' (random IDs, written
// create-only, valid segments with index and footer, at most MaxRoundBytes
// of pages each) and points C's pages there. Nothing else changes: the old
// segments stay until GC finds that no retained checkpoint and no retained
// record names them (see gc.go for the argument).
//
// A crash after an S' PUT and before the checkpoint's PUT leaves S' named
// by nothing: orphan collection deletes it after OrphanGrace. A crash after
// the checkpoint's PUT leaves a complete checkpoint naming S' (readers may
// use it; GC and orphan collection keep what any listed checkpoint names).
//
// Writers are bounded in time: a checkpoint step that has run longer than
// half of min(GCGrace, OrphanGrace) since it read the volume's history
// gives up before its next PUT (ErrCheckpointTooSlow). GC deletes only
// GCGrace after its round committed and orphan collection only segments
// older than OrphanGrace, so every checkpoint and S' a GC pass or an orphan
// pass could miss was built from a state that already knew that round.

// ErrCheckpointTooSlow is a checkpoint step that ran past its time budget
// (half of min(GCGrace, OrphanGrace)) and gave up before a PUT; the next
// attempt starts over.
var ErrCheckpointTooSlow = errors.New("flusher: checkpoint step ran past its time budget")

// compactResult is what a compaction wrote.
type compactResult struct {
	segments []segment.ID
	pages    int
}

// writeBudget returns how long a checkpoint step may run before its last
// PUT (0: unbounded).
func (f *Flusher) writeBudget() time.Duration {
	var b time.Duration
	for _, g := range []time.Duration{f.cfg.GCGrace, f.cfg.OrphanGrace} {
		if g > 0 && (b == 0 || g < b) {
			b = g
		}
	}
	return b / 2
}

// checkBudget fails if the step started at start ran past its budget.
func (f *Flusher) checkBudget(start time.Time, what string) error {
	if b := f.writeBudget(); b > 0 {
		if d := f.now().Sub(start); d > b {
			return fmt.Errorf("%w: %v before %s (budget %v)", ErrCheckpointTooSlow, d.Round(time.Millisecond), what, b)
		}
	}
	return nil
}

// compactOn reports whether compaction runs.
func (f *Flusher) compactOn() bool {
	return f.cfg.CompactBelow > 0 && (f.cfg.RetainLSNs > 0 || f.cfg.RetainHistory > 0)
}

// compact moves ck's live pages out of its sparse segments into new
// compacted segments, written before it returns, and rewrites ck to point
// there. It changes nothing when no segment is sparse.
func (f *Flusher) compact(ctx context.Context, ck *segment.Checkpoint, start time.Time) (compactResult, error) {
	var res compactResult
	if !f.compactOn() || len(ck.Pages) == 0 {
		return res, nil
	}
	live := make([]int, len(ck.Segments))
	for _, p := range ck.Pages {
		live[p.Segment]++
	}
	objs, err := f.store.List(ctx, segment.SegmentPrefix(ck.VID))
	if err != nil {
		return res, &StoreError{Op: "list segments of " + ck.VID.String(), Err: err}
	}
	size := make(map[segment.ID]int64, len(objs))
	for _, o := range objs {
		if sid, err := segment.ParseID(o.Key[len(segment.SegmentPrefix(ck.VID)):]); err == nil {
			size[sid] = o.Size
		}
	}
	pick := make([]bool, len(ck.Segments))
	any := false
	for i, sid := range ck.Segments {
		sz, ok := size[sid]
		if !ok {
			continue // not listed (yet): left alone
		}
		count := (sz - segment.FooterSize) / (segment.PageSize + segment.EntrySize)
		if count > 0 && float64(live[i]) < f.cfg.CompactBelow*float64(count) {
			pick[i], any = true, true
		}
	}
	if !any {
		return res, nil
	}
	// The live versions to move, in idx order (ck.Pages ascends by idx).
	var moved []int // indexes into ck.Pages
	for i, p := range ck.Pages {
		if pick[p.Segment] {
			moved = append(moved, i)
		}
	}
	data, err := f.readLive(ctx, ck, moved, size)
	if err != nil {
		return res, err
	}
	maxPages := max(1, int(f.cfg.MaxRoundBytes/segment.PageSize))
	type newLoc struct {
		sid segment.ID
		pos uint32
	}
	locs := make([]newLoc, len(moved))
	for lo := 0; lo < len(moved); lo += maxPages {
		hi := min(lo+maxPages, len(moved))
		b := segment.NewBuilder(ck.VID)
		for k := lo; k < hi; k++ {
			p := ck.Pages[moved[k]]
			if err := b.Add(p.Idx, p.LSN, data[k]); err != nil {
				return res, fmt.Errorf("compact %s: %w", ck.VID, err)
			}
		}
		enc, err := b.Encode()
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", ck.VID, err)
		}
		sid, err := segment.NewID(f.now(), rand.Reader)
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", ck.VID, err)
		}
		if err := f.checkBudget(start, "a compacted segment's PUT"); err != nil {
			return res, err
		}
		key := segment.SegmentKey(ck.VID, sid)
		t0 := time.Now()
		err = f.store.PutIfAbsent(ctx, key, enc)
		f.m.observePut("compacted", t0, err)
		if err != nil {
			return res, &StoreError{Op: "write compacted segment " + key, Err: err}
		}
		res.segments = append(res.segments, sid)
		// One version per idx, ascending: the k-th page is at position k.
		for k := lo; k < hi; k++ {
			locs[k] = newLoc{sid: sid, pos: uint32(k - lo)}
		}
	}
	res.pages = len(moved)
	// The new table: the segments kept, and the new ones.
	var sids []segment.ID
	for i, sid := range ck.Segments {
		if !pick[i] {
			sids = append(sids, sid)
		}
	}
	sids = append(sids, res.segments...)
	slices.SortFunc(sids, func(a, b segment.ID) int { return bytes.Compare(a[:], b[:]) })
	ord := make(map[segment.ID]uint32, len(sids))
	for i, sid := range sids {
		ord[sid] = uint32(i)
	}
	old := ck.Segments
	for i := range ck.Pages {
		ck.Pages[i].Segment = ord[old[ck.Pages[i].Segment]]
	}
	for k, i := range moved {
		ck.Pages[i].Segment, ck.Pages[i].Pos = ord[locs[k].sid], locs[k].pos
	}
	ck.Segments = sids
	f.plantedCompact(ck, moved)
	return res, nil
}

// readLive reads the moved pages, each verified against the CRC the
// checkpoint carries: a segment mostly moved is read whole (one GET), the
// others page by page (one ranged GET each, through the reader's cache).
func (f *Flusher) readLive(ctx context.Context, ck *segment.Checkpoint, moved []int, size map[segment.ID]int64) ([][]byte, error) {
	out := make([][]byte, len(moved))
	bySeg := map[uint32][]int{} // ordinal -> positions in moved
	for k, i := range moved {
		s := ck.Pages[i].Segment
		bySeg[s] = append(bySeg[s], k)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Uploads)
	for s, ks := range bySeg {
		sid := ck.Segments[s]
		key := segment.SegmentKey(ck.VID, sid)
		if int64(len(ks))*segment.PageSize*2 >= size[sid] {
			g.Go(func() error {
				b, err := f.store.Get(gctx, key)
				if err != nil {
					return &StoreError{Op: "read segment " + key + " to compact", Err: err}
				}
				for _, k := range ks {
					p := ck.Pages[moved[k]]
					off, n := segment.PageRange(int(p.Pos))
					if off+n > int64(len(b)) {
						return fmt.Errorf("%w: segment %s of %s has %d bytes, page %d at %d", ErrLayout, sid, ck.VID, len(b), p.Idx, off)
					}
					page := b[off : off+n]
					if err := segment.VerifyPage(p.Entry(), page); err != nil {
						return fmt.Errorf("segment %s of %s (via checkpoint %d): %w", sid, ck.VID, ck.LSN, err)
					}
					out[k] = page
				}
				return nil
			})
			continue
		}
		for _, k := range ks {
			g.Go(func() error {
				pv, err := f.reader.readCheckpointPage(gctx, ck.VID, ck, ck.Pages[moved[k]])
				if err != nil {
					return err
				}
				out[k] = pv.Data
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, fmt.Errorf("compact %s: %w", ck.VID, err)
		}
		return nil, err
	}
	return out, nil
}

// deleteFresh deletes compacted segments this step wrote that no
// checkpoint names (the checkpoint at that LSN was already there, naming
// others). Best effort: orphan collection gets what it leaves.
func (f *Flusher) deleteFresh(ctx context.Context, vid volume.ID, sids []segment.ID) {
	for _, sid := range sids {
		key := segment.SegmentKey(vid, sid)
		if err := f.store.Delete(ctx, key); err != nil {
			f.log.Warn("delete an unused compacted segment; orphan collection will", "key", key, "err", err)
		}
	}
}

// plantedCompactCrash is a fault-injection seam for tests: a non-nil error
// stops a checkpoint after its compacted segments' PUTs and before its own.
func (f *Flusher) plantedCompactCrash() error {
	if f.compactCrash != nil {
		return f.compactCrash()
	}
	return nil
}
