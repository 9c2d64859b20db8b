//go:build graft_bug_gc_extra_segment

package flusher

import (
	"context"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// plantedGCExtra is a deliberately planted bug, built only with the tag
// graft_bug_gc_extra_segment: GC deletes one segment too many, the segment
// of the first log record after the base checkpoint, which retained
// snapshots need. THIS BUILD IS BROKEN ON PURPOSE, to prove the tests and
// the consistency suite detect it. Never set in a real build.
func (f *Flusher) plantedGCExtra(ctx context.Context, vid volume.ID, from volume.LSN, del func(string) error) error {
	rec, err := f.reader.Record(ctx, vid, from)
	if err != nil || rec.Segment.IsZero() {
		return err
	}
	return del(segment.SegmentKey(vid, rec.Segment))
}
