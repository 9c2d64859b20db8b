package bench_test

import (
	"testing"
	"time"

	"github.com/graft-cluster/graft/bench"
)

// With wall-clock retention GC deletes objects, compaction moves live
// pages, and the bucket shrinks below its peak; without it nothing is
// deleted or compacted and the bucket only grows.
// RunOverwrite itself checks every page at the head from the bucket.
func TestRunOverwrite_RetentionDeletes(t *testing.T) {
	cfg := bench.OverwriteConfig{
		Pages: 50, Duration: 6 * time.Second, Rate: 200, PagesPerCommit: 5, FlushInterval: 50 * time.Millisecond,
		CheckpointRecords: 4, GCInterval: 200 * time.Millisecond, GCGrace: 100 * time.Millisecond, SampleInterval: 200 * time.Millisecond,
		CompactBelow: 0.5,
	}
	keep, err := bench.RunOverwrite(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if keep.Deleted != 0 || keep.CompactedSegments != 0 {
		t.Fatalf("without retention GC deleted %d objects, compaction wrote %d segments", keep.Deleted, keep.CompactedSegments)
	}
	for i := 1; i < len(keep.Samples); i++ {
		if keep.Samples[i].BucketBytes < keep.Samples[i-1].BucketBytes {
			t.Fatalf("without retention the bucket shrank: %+v then %+v", keep.Samples[i-1], keep.Samples[i])
		}
	}
	cfg.RetainHistory = time.Second
	gc, err := bench.RunOverwrite(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	last := gc.Samples[len(gc.Samples)-1]
	if gc.Deleted == 0 || gc.CompactedSegments == 0 || last.BucketBytes >= keep.Samples[len(keep.Samples)-1].BucketBytes {
		t.Fatalf("with 1s retention: %d objects deleted, final bucket %d B (without retention %d B)", gc.Deleted, last.BucketBytes, keep.Samples[len(keep.Samples)-1].BucketBytes)
	}
	t.Logf("live %d B; final bucket without retention %d B, with 1s retention %d B (%d deleted, %d compacted segments)", gc.LiveBytes, keep.Samples[len(keep.Samples)-1].BucketBytes, last.BucketBytes, gc.Deleted, gc.CompactedSegments)
}
