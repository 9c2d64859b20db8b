package flusher_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// GC deletes the deltas at or below its base, keeps the ones above, and a
// clusterless read below what the bucket still holds answers the
// cluster's retention error naming the oldest readable lsn, not
// not-flushed.
func TestFlusher_GCDeltasAndBucketHorizon(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(gcConfig(8))
	vid := volume.MustNewID()
	for range 3 {
		e.rounds(ctx, fl, vid, 6)
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := e.log.f.History(vid)
	objs, err := e.store.List(ctx, segment.DeltaPrefix(vid))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := e.store.List(ctx, segment.LogPrefix(vid))
	if err != nil || len(logs) == 0 {
		t.Fatalf("log: %d records, %v", len(logs), err)
	}
	_, first, err := segment.ParseLogKey(logs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	base := first - 1 // the GC base: the first remaining record follows it
	if base == 0 || len(objs) == 0 {
		t.Fatalf("no GC happened: history %+v, %d deltas", h, len(objs))
	}
	for _, o := range objs {
		if _, lsn, err := segment.ParseDeltaKey(o.Key); err != nil || lsn <= base {
			t.Fatalf("delta %q at or below the gc base %d left (%v)", o.Key, base, err)
		}
	}
	e.check(ctx)
	e.checkCold(ctx)
	e.checkHead(ctx)
	r, err := flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard()})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.ReadSnapshot(ctx, vid, 1, []volume.PageIdx{1})
	var re *fsm.RetentionError
	if !errors.As(err, &re) || re.LSN != 1 || re.Oldest != base {
		t.Fatalf("cold read at 1 below the bucket's oldest %d: %v, want a retention error naming %d", base, err, base)
	}
	if want := fmt.Sprintf("lsn 1 of %s; the oldest readable lsn is %d", vid, base); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
	inv, err := r.Inventory(ctx, vid)
	if err != nil || inv.Deltas != len(objs) || inv.NewestDelta != h.Flushed || inv.Other != 0 {
		t.Fatalf("inventory %+v, %v; want %d deltas, newest %d, no other keys", inv, err, len(objs), h.Flushed)
	}
}
