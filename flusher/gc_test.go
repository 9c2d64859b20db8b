package flusher_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

func gcConfig(retainLSNs uint64) flusher.Config {
	cfg := checkpointConfig(3)
	cfg.RetainLSNs = retainLSNs
	cfg.GCInterval = 0
	cfg.GCGrace = 0
	return cfg
}

// countKeys counts vid's objects by kind.
func countKeys(t *testing.T, store objstore.Store, vid volume.ID) (logs, segs, ckpts int) {
	t.Helper()
	objs, err := store.List(context.Background(), segment.VolumesPrefix+vid.String()+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch {
		case strings.Contains(o.Key, "/log/"):
			logs++
		case strings.Contains(o.Key, "/segments/"):
			segs++
		case strings.Contains(o.Key, "/checkpoints/"):
			ckpts++
		}
	}
	return logs, segs, ckpts
}

// GC with --retain-lsns deletes what only snapshots below the horizon
// need, and every retained snapshot still reads right, from the state and
// from the bucket alone.
func TestFlusher_GCRetainLSNs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(gcConfig(8))
	vid := volume.MustNewID()
	for i := range 4 {
		e.rounds(ctx, fl, vid, 6)
		logsBefore, _, _ := countKeys(t, e.store, vid)
		n, err := fl.GCOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := e.log.f.History(vid)
		if h.Horizon == 0 || h.Horizon+8 < h.Checkpoint {
			t.Fatalf("horizon %d with checkpoint %d, head %d", h.Horizon, h.Checkpoint, h.Flushed)
		}
		logs, _, ckpts := countKeys(t, e.store, vid)
		if i > 0 && (n == 0 || logs >= logsBefore) || ckpts > 3 {
			t.Fatalf("gc deleted %d objects: %d -> %d log records, %d checkpoints", n, logsBefore, logs, ckpts)
		}
		e.check(ctx)
		e.checkCold(ctx)
		e.noLeakedSegments(ctx, vid)
		inv, err := e.reader.Inventory(ctx, vid)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Records != logs || inv.Checkpoints != ckpts || inv.Flushed != h.Flushed || inv.OldestReadable == 0 || inv.OldestReadable > h.Horizon {
			t.Fatalf("inventory %+v; bucket has %d records, %d checkpoints; horizon %d", inv, logs, ckpts, h.Horizon)
		}
	}
}

// A GC round moves the horizon at once but deletes nothing before its
// grace period has passed.
func TestFlusher_GCWaitsForGrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := gcConfig(4)
	cfg.GCGrace = time.Hour
	fl := e.flusher(cfg)
	now := time.Now()
	flusher.SetClock(fl, func() time.Time { return now })
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 12)
	logs, segs, ckpts := countKeys(t, e.store, vid)
	if n, err := fl.GCOnce(ctx); n != 0 || err != nil {
		t.Fatalf("gc inside the grace period deleted %d: %v", n, err)
	}
	if e.log.f.History(vid).Horizon == 0 || e.log.f.GC() == nil {
		t.Fatal("the gc round did not move the horizon")
	}
	if l, s, c := countKeys(t, e.store, vid); l != logs || s != segs || c != ckpts {
		t.Fatal("objects deleted inside the grace period")
	}
	now = now.Add(2 * time.Hour)
	if n, err := fl.GCOnce(ctx); n == 0 || err != nil {
		t.Fatalf("gc after the grace period deleted %d: %v", n, err)
	}
	if e.log.f.GC() != nil {
		t.Fatal("gc round still open")
	}
	e.check(ctx)
}

// --retain-history keeps the snapshots since the newest checkpoint written
// before now - D.
func TestFlusher_GCRetainHistory(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := gcConfig(0)
	cfg.RetainHistory = time.Minute
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 9)
	if n, err := fl.GCOnce(ctx); n != 0 || err != nil || e.log.f.History(vid).Horizon != 0 {
		t.Fatalf("gc within the retention deleted %d (%v), horizon %d", n, err, e.log.f.History(vid).Horizon)
	}
	// Two minutes later every checkpoint was written before the cutoff:
	// the newest one is the horizon.
	ck := e.log.f.History(vid).Checkpoint
	flusher.SetClock(fl, func() time.Time { return time.Now().Add(2 * time.Minute) })
	if n, err := fl.GCOnce(ctx); n == 0 || err != nil {
		t.Fatalf("gc past the retention deleted %d: %v", n, err)
	}
	if h := e.log.f.History(vid); h.Horizon != ck {
		t.Fatalf("horizon %d, want the newest checkpoint written before the cutoff, %d", h.Horizon, ck)
	}
	e.check(ctx)
	e.checkCold(ctx)
}

// A crash at each delete of a GC round leaves every retained snapshot
// readable, and the next leader's GC finishes the round.
func TestFlusher_GCCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	var deletes, failAt atomic.Int64
	crash := errors.New("crash")
	fs, err := faulty.New(objstore.NewMemory(), faulty.Config{Hook: func(_ context.Context, op faulty.Op, key string) error {
		if op == faulty.OpDelete && deletes.Add(1) == failAt.Load() {
			return crash
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fs)
	fl := e.flusher(gcConfig(5))
	vid := volume.MustNewID()
	for step := int64(1); ; step++ {
		e.rounds(ctx, fl, vid, 4)
		deletes.Store(0)
		failAt.Store(step)
		n, err := fl.GCOnce(ctx)
		if err == nil {
			if step < 6 {
				t.Logf("step %d: round deleted %d objects without reaching the crash", step, n)
				continue
			}
			break
		}
		failAt.Store(0)
		e.reader, _ = flusher.NewReader(fs, flusher.ReaderConfig{Logger: slogDiscard()})
		e.check(ctx)
		e.checkCold(ctx)
		// A new leader (a new flusher, same state) finishes the round.
		fl = e.flusher(gcConfig(5))
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatalf("step %d: finishing the round: %v", step, err)
		}
		if e.log.f.GC() != nil {
			t.Fatalf("step %d: round still open", step)
		}
		e.check(ctx)
		if step > 12 {
			break
		}
	}
}

// The planted bug graft_bug_gc_extra_segment (GC deletes one segment too
// many) is caught by TestFlusher_GCRetainLSNs.
func TestFlusher_GCPlantedBugIsCaught(t *testing.T) {
	plantedIsCaught(t, "graft_bug_gc_extra_segment", "TestFlusher_GCRetainLSNs", "the planted GC bug was not caught")
}

func firstLine(s, containing string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, containing) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// A deleted volume's objects are removed by GC after the grace period,
// and only then is the purge committed.
func TestFlusher_GCPurgesDeletedVolume(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := gcConfig(0)
	cfg.GCGrace = time.Hour
	fl := e.flusher(cfg)
	now := time.Now()
	flusher.SetClock(fl, func() time.Time { return now })
	vid, keep := volume.MustNewID(), volume.MustNewID()
	e.rounds(ctx, fl, vid, 4)
	e.rounds(ctx, fl, keep, 4)
	if resp, err := e.log.Propose(ctx, fsm.EncodeTombstone(fsm.Tombstone{VID: vid, TimeUnixMs: now.UnixMilli()})); err != nil || resp.(*fsm.AdminResult).Err != nil {
		t.Fatalf("delete: %v %+v", err, resp)
	}
	delete(e.models, vid)
	if n, err := fl.GCOnce(ctx); n != 0 || err != nil {
		t.Fatalf("purge inside the grace period: %d, %v", n, err)
	}
	// Its objects are still there, but a new cluster recovering from the
	// bucket does not bring it back (the deleted marker).
	fresh := &log{f: fsm.New()}
	if err := flusher.Recover(ctx, fresh.f, e.store, e.reader, fresh, slogDiscard()); err != nil {
		t.Fatal(err)
	}
	if fresh.f.HasVolume(vid) || !fresh.f.HasVolume(keep) {
		t.Fatalf("recovery adopted the deleted volume (%v) or lost the other (%v)", fresh.f.HasVolume(vid), fresh.f.HasVolume(keep))
	}
	now = now.Add(2 * time.Hour)
	if n, err := fl.GCOnce(ctx); n == 0 || err != nil {
		t.Fatalf("purge after the grace period: %d, %v", n, err)
	}
	if l, s, c := countKeys(t, e.store, vid); l+s+c != 0 {
		t.Fatalf("deleted volume keeps %d records, %d segments, %d checkpoints", l, s, c)
	}
	if _, err := fl.GCOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if objs, err := e.store.List(ctx, segment.VolumesPrefix+vid.String()+"/"); err != nil || len(objs) != 0 {
		t.Fatalf("after the purge the bucket still holds %v (%v)", objs, err)
	}
	if tb, ok := e.log.f.Deleted(vid); !ok || !tb.Purged {
		t.Fatalf("tombstone %+v, purged not committed", tb)
	}
	e.check(ctx) // the other volume is untouched
}

// noLeakedSegments checks that every segment of vid in the bucket is named
// by a log record there or by a checkpoint there (GC's keep set), and that
// no checkpoint below the base is left: none kept by an earlier round's
// base, and no compacted segment, outlives the last checkpoint naming it.
func (e *env) noLeakedSegments(ctx context.Context, vid volume.ID) {
	e.t.Helper()
	named := map[string]bool{}
	objs, err := e.store.List(ctx, segment.VolumesPrefix+vid.String()+"/")
	if err != nil {
		e.t.Fatal(err)
	}
	h := e.log.f.History(vid)
	var ckpts []volume.LSN
	for _, o := range objs {
		if _, from, err := segment.ParseLogKey(o.Key); err == nil {
			rec, err := e.reader.Record(ctx, vid, from)
			if err != nil {
				e.t.Fatal(err)
			}
			named[segment.SegmentKey(vid, rec.Segment)] = true
		}
		if _, lsn, err := segment.ParseCheckpointKey(o.Key); err == nil {
			if n := len(ckpts); n == 0 || ckpts[n-1] != lsn {
				ckpts = append(ckpts, lsn) // once per generation
			}
			ck := e.checkpointObject(ctx, o.Key)
			for _, sid := range ck.Segments {
				named[segment.SegmentKey(vid, sid)] = true
			}
		}
	}
	// Keys sort newest first: the oldest is the base of the last round, the
	// newest checkpoint at or below the horizon.
	if n := len(ckpts); n > 1 && h.Horizon > 0 && ckpts[n-2] <= h.Horizon {
		e.t.Fatalf("checkpoints %v: %d and %d are both at or below the horizon %d", ckpts, ckpts[n-1], ckpts[n-2], h.Horizon)
	}
	for _, o := range objs {
		if strings.Contains(o.Key, "/segments/") && !named[o.Key] {
			e.t.Fatalf("segment %s is named by no record and no checkpoint %v", o.Key, ckpts)
		}
	}
}

// checkpointObject reads and decodes the checkpoint (any generation) at key.
func (e *env) checkpointObject(ctx context.Context, key string) segment.Checkpoint {
	e.t.Helper()
	b, err := e.store.Get(ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	ck, err := segment.DecodeCheckpoint(b)
	if err != nil {
		e.t.Fatalf("checkpoint %s: %v", key, err)
	}
	return ck
}

// noDeadSegments fails unless every segment of vid holds a version some
// retained snapshot reads: a listed log record names the segment, or the
// newest generation of a listed checkpoint locates a version in it.
func (e *env) noDeadSegments(ctx context.Context, vid volume.ID) {
	e.t.Helper()
	objs, err := e.store.List(ctx, segment.VolumesPrefix+vid.String()+"/")
	if err != nil {
		e.t.Fatal(err)
	}
	needed := map[string]bool{}
	newest := map[volume.LSN]uint64{}
	for _, o := range objs {
		if _, lsn, gen, err := segment.ParseCheckpointGenKey(o.Key); err == nil {
			newest[lsn] = max(newest[lsn], gen)
		}
	}
	for _, o := range objs {
		if _, from, err := segment.ParseLogKey(o.Key); err == nil {
			rec, err := e.reader.Record(ctx, vid, from)
			if err != nil {
				e.t.Fatal(err)
			}
			needed[segment.SegmentKey(vid, rec.Segment)] = true
		}
		if _, lsn, gen, err := segment.ParseCheckpointGenKey(o.Key); err == nil && gen == newest[lsn] {
			ck := e.checkpointObject(ctx, o.Key)
			for _, p := range ck.Pages {
				needed[segment.SegmentKey(vid, ck.Segments[p.Segment])] = true
			}
		}
	}
	for _, o := range objs {
		if strings.Contains(o.Key, "/segments/") && !needed[o.Key] {
			e.t.Fatalf("segment %s holds no version a retained snapshot reads (newest generations %v)", o.Key, newest)
		}
	}
}
