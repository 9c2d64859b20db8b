package flusher

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Compaction.
//
// At checkpoint time, before the checkpoint's PUT, the leader compacts the
// segments that only checkpoints still need. It lists the volume's
// checkpoints and takes the retained ones: the newest usable generation
// (segment.CheckpointGenKey) of every checkpoint at or above the base (the
// newest usable checkpoint at or below the state's horizon). A segment is a
// candidate when every version the retained checkpoints and the new one C
// name in it is at or below the horizon (so it is a compacted segment, or
// the segment of a record no retained snapshot reads through its record)
// and those versions are below Config.CompactBelow of the segment's page
// count (from one LIST of the volume's segments). From the candidates it
// copies exactly the versions some retained checkpoint or C names (same
// idx, lsn, bytes, so the same CRC, each checked) into new segments S'
// (random IDs, create-only, at most CompactSegmentBytes of pages each),
// grouped by when each version stops being needed (the LSN of its next
// version in the tables, the live ones last) so that a compacted segment
// tends to die whole. Then C points there, and every retained checkpoint
// naming a picked segment is written again as its next generation,
// create-only, pointing at S': the same snapshot, other locations. The
// picked segments are then named only by superseded generations (and
// perhaps by records at or below the horizon), and GC's sweep deletes them
// a grace period after the new generations appeared (gc_sweep.go), instead
// of keeping them until the last checkpoint naming them leaves retention:
// that wait held every live version twice and kept the bucket near 3.7x
// the live data under overwrite.
//
// A crash after an S' PUT and before the checkpoint's PUT leaves S' named
// by nothing: orphan collection deletes it after OrphanGrace. A crash after
// the checkpoint's PUT and before some generation PUTs leaves those
// checkpoints at their old generation, still naming the picked segments,
// which GC then keeps (it keeps what the newest generation names). A
// generation PUT that finds the key taken lost to a concurrent rewrite of
// another leader; its checkpoint is left as that one wrote it.
//
// Writers are bounded in time: a checkpoint step that has run longer than
// half of min(GCGrace, OrphanGrace) since it read the volume's history
// gives up before its next PUT (ErrCheckpointTooSlow). GC deletes only
// GCGrace after its round committed, the sweep only GCGrace after a newer
// generation appeared, and orphan collection only segments older than
// OrphanGrace, so every checkpoint, generation and S' a GC pass, a sweep
// or an orphan pass could miss was built from tables that were current
// when it started.

// ErrCheckpointTooSlow is a checkpoint step that ran past its time budget
// (half of min(GCGrace, OrphanGrace)) and gave up before a PUT; the next
// attempt starts over.
var ErrCheckpointTooSlow = errors.New("flusher: checkpoint step ran past its time budget")

// compactResult is what a compaction wrote and what it leaves to write.
type compactResult struct {
	segments []segment.ID
	pages    int
	// gens are the retained checkpoints to write again, relocated, each
	// with Gen set to its next generation.
	gens []*segment.Checkpoint
	// moved are the indexes of C's pages that now live in S'.
	moved []int
}

// retainedCkpt is a retained checkpoint: its newest usable generation and
// the newest generation listed (maybe unusable).
type retainedCkpt struct {
	ck     *segment.Checkpoint
	maxGen uint64
}

// listRetained lists vid's checkpoints and returns the retained ones
// (newest first): every checkpoint at or above the newest usable one at
// or below horizon (all of them when horizon is 0), each read in its
// newest usable generation, which also refreshes the reader's cache so the
// checkpoint step builds on current generations.
func (f *Flusher) listRetained(ctx context.Context, vid volume.ID, horizon volume.LSN) ([]retainedCkpt, error) {
	objs, err := f.store.List(ctx, segment.CheckpointPrefix(vid))
	if err != nil {
		return nil, &StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	var out []retainedCkpt
	for _, g := range groupCheckpoints(objs) {
		ck, err := f.reader.checkpointGens(ctx, vid, g.lsn, g.gens)
		var bad *badCheckpointError
		switch {
		case errors.As(err, &bad):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, retainedCkpt{ck: ck, maxGen: slices.Max(g.gens)})
		if horizon > 0 && g.lsn <= horizon {
			break // the base
		}
	}
	return out, nil
}

// verKey is one page version.
type verKey struct {
	idx volume.PageIdx
	lsn volume.LSN
}

// verLoc is where a table locates a version, with its CRC.
type verLoc struct {
	sid segment.ID
	pos uint32
	crc uint32
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

// compactSegmentBytes is the page bytes of one compacted segment at most.
func (f *Flusher) compactSegmentBytes() uint64 {
	b := f.cfg.MaxRoundBytes
	if c := f.cfg.CompactSegmentBytes; c > 0 && c < b {
		b = c
	}
	return b
}

// compactBudget is how many versions one checkpoint step moves at most
// (at least one segment's worth is always moved): CompactMaxFraction of
// the checkpoint's pages, at least one compacted segment's worth.
func (f *Flusher) compactBudget(pages int) int {
	if f.cfg.CompactMaxFraction <= 0 {
		return math.MaxInt
	}
	return max(int(f.compactSegmentBytes()/segment.PageSize), int(f.cfg.CompactMaxFraction*float64(pages)))
}

// compactOn reports whether compaction runs.
func (f *Flusher) compactOn() bool {
	return f.cfg.CompactBelow > 0 && (f.cfg.RetainLSNs > 0 || f.cfg.RetainHistory > 0)
}

// compact picks the candidate segments (see the top of this file) among
// those the retained checkpoints ret and the new checkpoint ck name,
// copies the versions the tables name in them into new segments, written
// before it returns, relocates ck in place, and returns the relocated
// retained checkpoints to write as their next generations. It changes
// nothing when no segment is sparse enough or horizon is 0.
func (f *Flusher) compact(ctx context.Context, ck *segment.Checkpoint, ret []retainedCkpt, horizon volume.LSN, start time.Time) (compactResult, error) {
	var res compactResult
	if !f.compactOn() || len(ck.Pages) == 0 || horizon == 0 {
		return res, nil
	}
	tables := make([]*segment.Checkpoint, 0, len(ret)+1)
	for _, r := range ret {
		if r.ck.LSN < ck.LSN {
			tables = append(tables, r.ck)
		}
	}
	tables = append(tables, ck)
	inSeg := map[segment.ID]map[verKey]verLoc{}
	top := map[segment.ID]volume.LSN{}
	lsns := map[volume.PageIdx][]volume.LSN{} // every named version of a page
	for _, t := range tables {
		for _, p := range t.Pages {
			sid := t.Segments[p.Segment]
			m := inSeg[sid]
			if m == nil {
				m = map[verKey]verLoc{}
				inSeg[sid] = m
			}
			k := verKey{p.Idx, p.LSN}
			if _, ok := m[k]; !ok {
				m[k] = verLoc{sid: sid, pos: p.Pos, crc: p.CRC}
				lsns[p.Idx] = append(lsns[p.Idx], p.LSN)
			}
			top[sid] = max(top[sid], p.LSN)
		}
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
	type pickT struct {
		sid     segment.ID
		density float64
	}
	var picks []pickT
	for sid, m := range inSeg {
		sz, ok := size[sid]
		if !ok || top[sid] > horizon {
			continue // not listed (yet), or read through a retained record
		}
		count := (sz - segment.FooterSize) / (segment.PageSize + segment.EntrySize)
		if count > 0 && float64(len(m)) < f.cfg.CompactBelow*float64(count) {
			picks = append(picks, pickT{sid, float64(len(m)) / float64(count)})
		}
	}
	if len(picks) == 0 {
		return res, nil
	}
	// Sparsest first, and at most a bounded number of versions per step
	// (compactBudget): a step's work and the bytes held twice until the
	// sweep stay small, and segments that became sparse together (copied
	// together) are spread over steps instead of moving all at once.
	slices.SortFunc(picks, func(a, b pickT) int { return cmp.Compare(a.density, b.density) })
	budget, n := f.compactBudget(len(ck.Pages)), 0
	for i, p := range picks {
		if i > 0 && n+len(inSeg[p.sid]) > budget {
			picks = picks[:i]
			break
		}
		n += len(inSeg[p.sid])
	}
	picked := make(map[segment.ID]bool, len(picks))
	var moved []verLoc
	var keys []verKey
	seen := map[verKey]bool{}
	for _, p := range picks {
		picked[p.sid] = true
		for k, l := range inSeg[p.sid] {
			// Tables may locate one version in two picked segments (a
			// checkpoint whose rewrite crashed still names the older).
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
				moved = append(moved, l)
			}
		}
	}
	// Order by when each version stops being needed: its next version's
	// LSN (the versions still live last), so a compacted segment's pages
	// tend to leave retention together.
	for idx, l := range lsns {
		slices.Sort(l)
		lsns[idx] = slices.Compact(l) // a version may sit in two segments
	}
	death := func(k verKey) volume.LSN {
		l := lsns[k.idx]
		i, _ := slices.BinarySearch(l, k.lsn)
		if i+1 < len(l) {
			return l[i+1]
		}
		return ^volume.LSN(0)
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(death(keys[a]), death(keys[b])); c != 0 {
			return c
		}
		return compareVer(keys[a], keys[b])
	})
	data, err := f.readMoved(ctx, ck.VID, keys, moved, size)
	if err != nil {
		return res, err
	}
	chunk := max(1, int(f.compactSegmentBytes()/segment.PageSize))
	newLoc := make(map[verKey]verLoc, len(keys))
	for lo := 0; lo < len(order); lo += chunk {
		byDeath := order[lo:min(lo+chunk, len(order))]
		part := slices.Clone(byDeath)
		slices.SortFunc(part, func(a, b int) int { return compareVer(keys[a], keys[b]) })
		b := segment.NewBuilder(ck.VID)
		for _, i := range part {
			if err := b.Add(keys[i].idx, keys[i].lsn, data[i]); err != nil {
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
		// Sorted by (idx, lsn) like the segment's index: the k-th is at k.
		for k, i := range f.plantedPositions(part, byDeath) {
			newLoc[keys[i]] = verLoc{sid: sid, pos: uint32(k), crc: moved[i].crc}
		}
	}
	res.pages = len(keys)
	res.moved = relocate(ck, picked, newLoc)
	for _, t := range tables[:len(tables)-1] {
		if !namesAny(t, picked) {
			continue
		}
		g := cloneCheckpoint(t)
		f.plantedCompact(g, relocate(g, picked, newLoc))
		for _, r := range ret {
			if r.ck == t {
				g.Gen = r.maxGen + 1
			}
		}
		res.gens = append(res.gens, g)
	}
	f.plantedCompact(ck, res.moved)
	return res, nil
}

func compareVer(a, b verKey) int {
	if c := cmp.Compare(a.idx, b.idx); c != 0 {
		return c
	}
	return cmp.Compare(a.lsn, b.lsn)
}

// namesAny reports whether ck names one of the segments in set.
func namesAny(ck *segment.Checkpoint, set map[segment.ID]bool) bool {
	for _, sid := range ck.Segments {
		if set[sid] {
			return true
		}
	}
	return false
}

// cloneCheckpoint copies ck deeply enough to relocate the copy.
func cloneCheckpoint(ck *segment.Checkpoint) *segment.Checkpoint {
	c := *ck
	c.Segments = slices.Clone(ck.Segments)
	c.Pages = slices.Clone(ck.Pages)
	return &c
}

// relocate points ck's versions in the picked segments at their new
// locations and rebuilds its segment table (ascending, only the segments
// still named). It returns the indexes of the pages it moved.
func relocate(ck *segment.Checkpoint, picked map[segment.ID]bool, newLoc map[verKey]verLoc) []int {
	sids := map[segment.ID]bool{}
	var moved []int
	locs := make([]verLoc, len(ck.Pages))
	for i, p := range ck.Pages {
		l := verLoc{sid: ck.Segments[p.Segment], pos: p.Pos, crc: p.CRC}
		if picked[l.sid] {
			l = newLoc[verKey{p.Idx, p.LSN}]
			moved = append(moved, i)
		}
		locs[i] = l
		sids[l.sid] = true
	}
	table := slices.SortedFunc(maps.Keys(sids), func(a, b segment.ID) int { return bytes.Compare(a[:], b[:]) })
	ord := make(map[segment.ID]uint32, len(table))
	for i, sid := range table {
		ord[sid] = uint32(i)
	}
	for i := range ck.Pages {
		ck.Pages[i].Segment, ck.Pages[i].Pos = ord[locs[i].sid], locs[i].pos
	}
	ck.Segments = table
	return moved
}

// readMoved reads the versions to move, each verified against the CRC the
// tables carry: a segment mostly moved is read whole (one GET), the others
// page by page (one ranged GET each, through the reader's cache).
func (f *Flusher) readMoved(ctx context.Context, vid volume.ID, keys []verKey, locs []verLoc, size map[segment.ID]int64) ([][]byte, error) {
	out := make([][]byte, len(keys))
	bySeg := map[segment.ID][]int{}
	for i, l := range locs {
		bySeg[l.sid] = append(bySeg[l.sid], i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.cfg.Uploads)
	for sid, is := range bySeg {
		key := segment.SegmentKey(vid, sid)
		if int64(len(is))*segment.PageSize*2 >= size[sid] {
			g.Go(func() error {
				b, err := f.store.Get(gctx, key)
				if err != nil {
					return &StoreError{Op: "read segment " + key + " to compact", Err: err}
				}
				for _, i := range is {
					e := segment.Entry{Idx: keys[i].idx, LSN: keys[i].lsn, CRC: locs[i].crc}
					off, n := segment.PageRange(int(locs[i].pos))
					if off+n > int64(len(b)) {
						return fmt.Errorf("%w: segment %s of %s has %d bytes, page %d at %d", ErrLayout, sid, vid, len(b), e.Idx, off)
					}
					page := b[off : off+n]
					if err := segment.VerifyPage(e, page); err != nil {
						return fmt.Errorf("segment %s of %s (to compact): %w", sid, vid, err)
					}
					out[i] = page
				}
				return nil
			})
			continue
		}
		for _, i := range is {
			g.Go(func() error {
				one := &segment.Checkpoint{VID: vid, Segments: []segment.ID{sid}}
				pv, err := f.reader.readCheckpointPage(gctx, vid, one, segment.CheckpointPage{Idx: keys[i].idx, LSN: keys[i].lsn, Pos: locs[i].pos, CRC: locs[i].crc})
				if err != nil {
					return err
				}
				out[i] = pv.Data
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, fmt.Errorf("compact %s: %w", vid, err)
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
