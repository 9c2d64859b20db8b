package jepsen

import (
	"context"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// TestCheckGenerations writes a volume through the real flusher with
// retention and compaction (GC grace 0: superseded generations are swept
// at once) and checks that checkGenerations passes its rewritten
// checkpoints, then finds a generation that mislocates a version and an
// older generation that describes another snapshot.
func TestCheckGenerations(t *testing.T) {
	ctx := context.Background()
	st := objstore.NewMemory()
	cfg := flusher.DefaultConfig()
	cfg.Interval, cfg.OrphanInterval, cfg.CheckpointRecords, cfg.CheckpointBytes = 0, 0, 3, 0
	cfg.RetainLSNs, cfg.GCInterval, cfg.GCGrace, cfg.CompactBelow = 8, 0, 0, 1
	v := newFlushedVolume(t, st, cfg, 5)
	vid, fl := v.vid, v.fl
	rewritten := func() (key string, older string) {
		objs, err := st.List(ctx, segment.CheckpointPrefix(vid))
		if err != nil {
			t.Fatal(err)
		}
		top := map[volume.LSN]uint64{}
		for _, o := range objs {
			_, l, g, _ := segment.ParseCheckpointGenKey(o.Key)
			top[l] = max(top[l], g)
		}
		for _, o := range objs {
			_, l, g, _ := segment.ParseCheckpointGenKey(o.Key)
			if g > 0 && g == top[l] {
				return o.Key, segment.CheckpointGenKey(vid, l, g-1)
			}
		}
		return "", ""
	}
	for i := 0; ; i++ {
		if k, _ := rewritten(); k != "" {
			break
		}
		if i == 60 {
			t.Fatal("no checkpoint rewritten in 60 rounds")
		}
		v.commitRandom(t, 6)
		if err := fl.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := fl.CheckpointOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	miss, checked, err := checkGenerations(ctx, st, vid)
	if err != nil || len(miss) > 0 || checked == 0 {
		t.Fatalf("clean bucket: %d generations checked, %q, %v", checked, miss, err)
	}
	key, older := rewritten()
	rewrite := func(key string, change func(*segment.Checkpoint)) {
		t.Helper()
		b, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := segment.DecodeCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		change(&ck)
		if b, err = ck.AppendBinary(nil); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	// The newest generation locates a version one position off.
	rewrite(key, func(ck *segment.Checkpoint) { ck.Pages[0].Pos++ })
	miss, _, err = checkGenerations(ctx, st, vid)
	if err != nil || len(miss) == 0 || !strings.Contains(strings.Join(miss, "\n"), "does not hold it") {
		t.Fatalf("mislocated version: %q, %v", miss, err)
	}
	rewrite(key, func(ck *segment.Checkpoint) { ck.Pages[0].Pos-- })
	// An older generation (swept by now: put one back) names another
	// version of a page.
	b, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, older, b); err != nil {
		t.Fatal(err)
	}
	if miss, _, err := checkGenerations(ctx, st, vid); err != nil || len(miss) > 0 {
		t.Fatalf("an older generation equal to the newest: %q, %v", miss, err)
	}
	rewrite(older, func(ck *segment.Checkpoint) { ck.Pages[0].CRC ^= 1 })
	miss, _, err = checkGenerations(ctx, st, vid)
	if err != nil || len(miss) == 0 || !strings.Contains(strings.Join(miss, "\n"), "describes another snapshot") {
		t.Fatalf("older generation of another snapshot: %q, %v", miss, err)
	}
}
