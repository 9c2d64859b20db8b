package flusher

import (
	"context"
	"strings"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Inventory is what the bucket holds of one volume (graft volume info
// --object-store).
type Inventory struct {
	VID volume.ID
	// Checkpoints, Records and Segments count the objects of each kind
	// (a checkpoint once, however many generations it has); the Bytes
	// fields are their sizes (every generation's).
	Checkpoints, Records, Segments             int
	CheckpointBytes, RecordBytes, SegmentBytes int64
	// Generations counts the checkpoint objects beyond one per checkpoint:
	// generations compaction wrote that are not yet swept, or superseded
	// ones waiting for the GC grace.
	Generations int
	// Deltas counts the delta checkpoints (deltas/), NewestDelta is the
	// newest one's lsn (the head a clusterless reader sees).
	Deltas      int
	DeltaBytes  int64
	NewestDelta volume.LSN
	Other       int // keys of no known kind
	// Unrecorded and UnrecordedBytes are the segments no log record in
	// the bucket names: compacted segments (only checkpoints name them) and
	// segments GC kept for their live pages after deleting their records.
	Unrecorded                                    int
	UnrecordedBytes                               int64
	NewestCheckpoint, OldestCheckpoint, FirstFrom volume.LSN
	// Flushed is the newest flushed LSN (0: nothing).
	Flushed volume.LSN
	// OldestReadable is the oldest snapshot the bucket alone can serve: 1
	// when the log starts at 1, else the oldest usable checkpoint (0:
	// nothing readable).
	OldestReadable volume.LSN
}

// Inventory lists the volume's objects (one listing of its prefix) and
// reads its history.
func (r *Reader) Inventory(ctx context.Context, vid volume.ID) (Inventory, error) {
	inv := Inventory{VID: vid}
	objs, err := r.store.List(ctx, segment.VolumesPrefix+vid.String()+"/")
	if err != nil {
		return inv, &StoreError{Op: "list volume " + vid.String(), Err: err}
	}
	var ckpts []volume.LSN // newest first
	var froms []volume.LSN
	segSize := map[segment.ID]int64{}
	for _, o := range objs {
		switch {
		case strings.Contains(o.Key, "/checkpoints/"):
			if _, lsn, err := segment.ParseCheckpointKey(o.Key); err == nil {
				inv.CheckpointBytes += o.Size
				if n := len(ckpts); n > 0 && ckpts[n-1] == lsn {
					inv.Generations++ // one LSN's generations list together
					continue
				}
				inv.Checkpoints++
				ckpts = append(ckpts, lsn)
				continue
			}
		case strings.Contains(o.Key, "/log/"):
			if _, from, err := segment.ParseLogKey(o.Key); err == nil {
				if inv.Records == 0 {
					inv.FirstFrom = from
				}
				inv.Records++
				inv.RecordBytes += o.Size
				froms = append(froms, from)
				continue
			}
		case strings.Contains(o.Key, "/deltas/"):
			if _, lsn, err := segment.ParseDeltaKey(o.Key); err == nil {
				if inv.Deltas == 0 {
					inv.NewestDelta = lsn // newest first
				}
				inv.Deltas++
				inv.DeltaBytes += o.Size
				continue
			}
		case strings.Contains(o.Key, "/segments/"):
			inv.Segments++
			inv.SegmentBytes += o.Size
			if _, text, ok := strings.Cut(o.Key, "/segments/"); ok {
				if sid, err := segment.ParseID(text); err == nil {
					segSize[sid] = o.Size
				}
			}
			continue
		}
		inv.Other++
	}
	if len(ckpts) > 0 {
		inv.NewestCheckpoint, inv.OldestCheckpoint = ckpts[0], ckpts[len(ckpts)-1]
	}
	// One GET per record (cached): retention keeps them few.
	for _, from := range froms {
		rec, err := r.record(ctx, vid, from)
		if err != nil {
			return inv, err
		}
		delete(segSize, rec.Segment)
	}
	for _, n := range segSize {
		inv.Unrecorded++
		inv.UnrecordedBytes += n
	}
	h, err := r.History(ctx, vid)
	if err != nil {
		return inv, err
	}
	inv.Flushed = h.Flushed
	switch {
	case inv.FirstFrom == 1:
		inv.OldestReadable = 1
	default:
		for i := len(ckpts) - 1; i >= 0; i-- {
			if _, err := r.Checkpoint(ctx, vid, ckpts[i]); err == nil {
				inv.OldestReadable = ckpts[i]
				break
			}
		}
	}
	return inv, nil
}
