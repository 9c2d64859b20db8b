package flusher

import (
	"context"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// collectDeltas deletes the volume's deltas at or below the GC base: every
// snapshot they describe is at or below the base, which the base checkpoint
// itself serves (the one at the base) or which is below the horizon. It
// runs first in a volume's GC step, before any segment is deleted, so a
// delta never names a deleted segment while it is listed (a reader that
// listed it just before finds it gone and takes the next one).
//
// Deltas above the base are kept, and GC's argument for segments is
// unchanged: a delta names only segments of log records (never a
// checkpoint's carried or compacted segment), and only of records after its
// own base, which is the state's checkpoint when it was written, hence at
// or above the GC base (GC bases are capped at the state's checkpoint);
// records above the base keep their segments. (A delta whose base the GC
// base overtook without the state knowing it: the GC base was a checkpoint
// whose Raft entry was lost. Its base is then deleted and readers skip it as
// unusable, counted, and fall back.)
//
// Delta keys sort newest first, so the ones at or below base are exactly
// those listed after DeltaKey(base+1).
func (f *Flusher) collectDeltas(ctx context.Context, vid volume.ID, base volume.LSN, del func(key string) error) error {
	after := segment.DeltaKey(vid, base+1)
	for {
		objs, err := objstore.ListAfter(ctx, f.store, segment.DeltaPrefix(vid), after, logListLimit)
		if err != nil {
			return &StoreError{Op: "list deltas of " + vid.String(), Err: err}
		}
		for _, o := range objs {
			if _, lsn, err := segment.ParseDeltaKey(o.Key); err != nil || lsn > base {
				continue
			}
			if err := del(o.Key); err != nil {
				return err
			}
		}
		if len(objs) < logListLimit {
			return nil
		}
		after = objs[len(objs)-1].Key
	}
}
