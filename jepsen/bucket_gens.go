package jepsen

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// checkGenerations checks vid's checkpoints in every generation compaction
// wrote (segment.CheckpointGenKey): the newest generation of each
// checkpoint (rewritten or not: compaction points a new checkpoint at
// compacted segments too) must locate every version it names at a segment
// position whose index entry holds that (page, LSN) and the checkpoint's
// CRC, since readers take it; every older generation still listed must
// describe the same snapshot (the same pages at the same versions and
// CRCs: a rewrite only moves versions). Objects listed and then gone (GC) are skipped; a segment a
// newest generation names and the bucket lacks is reported (readBucket
// reads again in case a GC round is half done). It returns the anomalies
// and how many generations it checked.
func checkGenerations(ctx context.Context, store objstore.Store, vid volume.ID) ([]string, int, error) {
	objs, err := store.List(ctx, segment.CheckpointPrefix(vid))
	if err != nil {
		return nil, 0, &flusher.StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
	}
	type gen struct {
		key string
		gen uint64
	}
	byLSN := map[volume.LSN][]gen{}
	var lsns []volume.LSN
	for _, o := range objs {
		_, lsn, g, err := segment.ParseCheckpointGenKey(o.Key)
		if err != nil {
			continue
		}
		if _, ok := byLSN[lsn]; !ok {
			lsns = append(lsns, lsn)
		}
		byLSN[lsn] = append(byLSN[lsn], gen{o.Key, g})
	}
	var out []string
	extra := 0
	indexes := map[segment.ID][]segment.Entry{}
	for _, lsn := range lsns {
		gens := byLSN[lsn]
		slices.SortFunc(gens, func(a, b gen) int { return -cmpU64(a.gen, b.gen) }) // newest first
		var want []segment.CheckpointPage
		for _, g := range gens {
			b, err := store.Get(ctx, g.key)
			if errors.Is(err, objstore.ErrNotFound) {
				continue // swept since the listing
			}
			if err != nil {
				return nil, 0, &flusher.StoreError{Op: "get checkpoint " + g.key, Err: err}
			}
			ck, err := segment.DecodeCheckpoint(b)
			if err != nil || ck.VID != vid || ck.LSN != lsn || ck.Delta {
				out = append(out, fmt.Sprintf("vid %s: checkpoint %d generation %d does not decode as that checkpoint: %v", vid, lsn, g.gen, err))
				continue
			}
			extra++
			if want == nil {
				want = ck.Pages
				miss, err := checkLocations(ctx, store, vid, &ck, indexes)
				if err != nil {
					return nil, 0, err
				}
				out = append(out, miss...)
				continue
			}
			if d := diffVersions(want, ck.Pages); d != "" {
				out = append(out, fmt.Sprintf("vid %s: checkpoint %d generation %d describes another snapshot than generation %d: %s", vid, lsn, g.gen, gens[0].gen, d))
			}
		}
	}
	return out, extra, nil
}

// checkLocations checks that every page ck names is at its position in its
// segment with its version and CRC.
func checkLocations(ctx context.Context, store objstore.Store, vid volume.ID, ck *segment.Checkpoint, indexes map[segment.ID][]segment.Entry) ([]string, error) {
	var out []string
	for _, p := range ck.Pages {
		sid := ck.Segments[p.Segment]
		ents, ok := indexes[sid]
		if !ok {
			b, err := store.Get(ctx, segment.SegmentKey(vid, sid))
			switch {
			case errors.Is(err, objstore.ErrNotFound):
			case err != nil:
				return nil, &flusher.StoreError{Op: fmt.Sprintf("get segment %s of %s", sid, vid), Err: err}
			default:
				if _, ix, err := segment.Decode(b); err == nil {
					ents = ix.Entries()
				}
			}
			indexes[sid] = ents
		}
		if int(p.Pos) >= len(ents) || ents[p.Pos] != p.Entry() {
			out = append(out, fmt.Sprintf("vid %s: checkpoint %d generation %d locates page %d at lsn %d at position %d of segment %s, which does not hold it (segment of %d entries)", vid, ck.LSN, ck.Gen, p.Idx, p.LSN, p.Pos, sid, len(ents)))
		}
	}
	return out, nil
}

// diffVersions describes the first difference between two checkpoints'
// page versions (idx, LSN, CRC), ignoring where they live.
func diffVersions(a, b []segment.CheckpointPage) string {
	for i := range min(len(a), len(b)) {
		if a[i].Idx != b[i].Idx || a[i].LSN != b[i].LSN || a[i].CRC != b[i].CRC {
			return fmt.Sprintf("page %d at lsn %d vs page %d at lsn %d", a[i].Idx, a[i].LSN, b[i].Idx, b[i].LSN)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d pages vs %d", len(a), len(b))
	}
	return ""
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
