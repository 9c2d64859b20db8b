package jepsen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// checkDeltas checks every delta checkpoint of vid left in the bucket
// against the volume's log records recs (in LSN order, as read): a delta
// at D over base C must name exactly the pages the commits in (C, D] wrote,
// each at the newest such commit's LSN, each at a segment position whose
// index entry holds that (page, LSN) and the delta's CRC, and carry the
// commit at D. A delta whose range the remaining records do not cover (GC
// deleted them; only possible at or below the GC base) is not checked;
// one listed and then gone (GC) is skipped. It returns the anomalies and
// how many deltas it checked.
func checkDeltas(ctx context.Context, store objstore.Store, vid volume.ID, recs []*segment.Record) ([]string, int, error) {
	objs, err := store.List(ctx, segment.DeltaPrefix(vid))
	if err != nil {
		return nil, 0, &flusher.StoreError{Op: "list deltas of " + vid.String(), Err: err}
	}
	if len(objs) == 0 || len(recs) == 0 {
		return nil, 0, nil
	}
	first := recs[0].From
	byLSN := map[volume.LSN]segment.RecordCommit{}
	var lsns []volume.LSN // every commit, ascending
	for _, rec := range recs {
		for _, c := range rec.Commits {
			byLSN[c.LSN] = c
			lsns = append(lsns, c.LSN)
		}
	}
	indexes := map[segment.ID][]segment.Entry{}
	entries := func(sid segment.ID) ([]segment.Entry, error) {
		if e, ok := indexes[sid]; ok {
			return e, nil
		}
		b, err := store.Get(ctx, segment.SegmentKey(vid, sid))
		if errors.Is(err, objstore.ErrNotFound) {
			indexes[sid] = nil
			return nil, nil
		}
		if err != nil {
			return nil, &flusher.StoreError{Op: fmt.Sprintf("get segment %s of %s", sid, vid), Err: err}
		}
		_, ix, err := segment.Decode(b)
		if err != nil {
			indexes[sid] = nil
			return nil, nil
		}
		indexes[sid] = ix.Entries()
		return indexes[sid], nil
	}
	var out []string
	checked := 0
	for _, o := range objs {
		_, d, err := segment.ParseDeltaKey(o.Key)
		if err != nil {
			out = append(out, fmt.Sprintf("vid %s: key %q under deltas/ is not a delta key", vid, o.Key))
			continue
		}
		b, err := store.Get(ctx, o.Key)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // GC took it since the listing
		}
		if err != nil {
			return nil, 0, &flusher.StoreError{Op: "get delta " + o.Key, Err: err}
		}
		dl, err := segment.DecodeCheckpoint(b)
		if err != nil || !dl.Delta || dl.VID != vid || dl.LSN != d {
			out = append(out, fmt.Sprintf("vid %s: delta %q is unusable (%v, delta %v, %s@%d)", vid, o.Key, err, dl.Delta, dl.VID, dl.LSN))
			continue
		}
		if dl.Prev+1 < first || d > lsns[len(lsns)-1] {
			continue // its records are gone (below the GC base) or it is past what was read
		}
		lo, _ := slices.BinarySearch(lsns, dl.Prev+1)
		hi, _ := slices.BinarySearch(lsns, d+1)
		if volume.LSN(hi-lo) != d-dl.Prev {
			continue // a record in its range was not read (GC racing): nothing to compare with
		}
		checked++
		where := fmt.Sprintf("vid %s: delta at %d (base %d)", vid, d, dl.Prev)
		if c, ok := byLSN[d]; !ok || c.Hash != dl.Commit.Hash {
			out = append(out, fmt.Sprintf("%s carries commit hash %s, the log has %s", where, dl.Commit.Hash, c.Hash))
		}
		want := map[volume.PageIdx]volume.LSN{}
		for _, l := range lsns[lo:hi] {
			for idx := range byLSN[l].Graft.All() {
				want[idx] = l
			}
		}
		for _, p := range dl.Pages {
			w, ok := want[p.Idx]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s names page %d at lsn %d, which no commit in (%d, %d] wrote", where, p.Idx, p.LSN, dl.Prev, d))
			case w != p.LSN:
				out = append(out, fmt.Sprintf("%s names page %d at lsn %d; the snapshot at %d holds its version %d", where, p.Idx, p.LSN, d, w))
			}
			delete(want, p.Idx)
			sid := dl.Segments[p.Segment]
			es, err := entries(sid)
			if err != nil {
				return nil, 0, err
			}
			if int(p.Pos) >= len(es) {
				out = append(out, fmt.Sprintf("%s locates page %d at position %d of segment %s, which holds %d entries (or is gone)", where, p.Idx, p.Pos, sid, len(es)))
				continue
			}
			if e := es[p.Pos]; e.Idx != p.Idx || e.LSN != p.LSN || e.CRC != p.CRC {
				out = append(out, fmt.Sprintf("%s locates page %d@%d at position %d of segment %s, which holds page %d@%d", where, p.Idx, p.LSN, p.Pos, sid, e.Idx, e.LSN))
			}
		}
		for _, idx := range slices.Sorted(maps.Keys(want)) {
			out = append(out, fmt.Sprintf("%s omits page %d, written at lsn %d: a head read through it answers an older version", where, idx, want[idx]))
		}
	}
	return out, checked, nil
}
