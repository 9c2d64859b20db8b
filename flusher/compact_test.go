package flusher_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

func compactConfig(retainLSNs uint64) flusher.Config {
	cfg := gcConfig(retainLSNs)
	cfg.CompactBelow = 1 // any segment with a dead page
	return cfg
}

// recordSegments returns the segments vid's log records in the bucket name.
func (e *env) recordSegments(ctx context.Context, vid volume.ID) map[segment.ID]bool {
	e.t.Helper()
	objs, err := e.store.List(ctx, segment.LogPrefix(vid))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[segment.ID]bool{}
	for _, o := range objs {
		_, from, err := segment.ParseLogKey(o.Key)
		if err != nil {
			e.t.Fatal(err)
		}
		rec, err := e.reader.Record(ctx, vid, from)
		if err != nil {
			e.t.Fatal(err)
		}
		out[rec.Segment] = true
	}
	return out
}

// checkCompacted checks the checkpoint of vid at lsn against the segments
// it names that no log record names (compacted ones): each decodes as a
// segment of vid, and every page the checkpoint points into it is there at
// the position it says with the version and CRC it says. It returns how
// many such segments the checkpoint names.
func (e *env) checkCompacted(ctx context.Context, vid volume.ID, lsn volume.LSN) int {
	e.t.Helper()
	recs := e.recordSegments(ctx, vid)
	ck, err := e.reader.Checkpoint(ctx, vid, lsn)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for ord, sid := range ck.Segments {
		if recs[sid] {
			continue
		}
		b, err := e.store.Get(ctx, segment.SegmentKey(vid, sid))
		if err != nil {
			e.t.Fatalf("checkpoint %d names compacted segment %s: %v", lsn, sid, err)
		}
		f, ix, err := segment.Decode(b)
		if err != nil || f.VID != vid || f.MaxLSN > lsn {
			e.t.Fatalf("compacted segment %s: footer %+v, %v", sid, f, err)
		}
		entries := ix.Entries()
		for _, p := range ck.Pages {
			if int(p.Segment) != ord {
				continue
			}
			if int(p.Pos) >= len(entries) || entries[p.Pos] != p.Entry() {
				e.t.Fatalf("checkpoint %d: page %d@%d at position %d of compacted segment %s, which holds %v there", lsn, p.Idx, p.LSN, p.Pos, sid, entries[min(int(p.Pos), len(entries)-1)])
			}
		}
		n++
	}
	return n
}

// Compaction moves the live pages of sparse segments into compacted
// segments the checkpoint points to; every retained snapshot reads right
// from the state and the bucket, before and after GC, and GC then deletes
// the sparse segments: the bucket holds few segments per live page.
func TestFlusher_CompactMovesLivePages(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(compactConfig(8))
	vid := volume.MustNewID()
	compacted := 0
	for range 6 {
		e.rounds(ctx, fl, vid, 6)
		h := e.log.f.History(vid)
		compacted += e.checkCompacted(ctx, vid, h.Checkpoint)
		e.check(ctx)
		e.checkCold(ctx)
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
		e.check(ctx)
		e.checkCold(ctx)
		e.noLeakedSegments(ctx, vid)
		e.noDeadSegments(ctx, vid)
	}
	segs, pages := fl.Compactions()
	if compacted == 0 || segs == 0 || pages == 0 {
		t.Fatalf("no compaction: %d compacted segments named by the newest checkpoints, counters %d segments %d pages", compacted, segs, pages)
	}
	// Every segment left holds a page a retained snapshot reads.
	e.noDeadSegments(ctx, vid)
	logs, nsegs, ckpts := countKeys(t, e.store, vid)
	inv, err := e.reader.Inventory(ctx, vid)
	if err != nil {
		t.Fatal(err)
	}
	if recs := e.recordSegments(ctx, vid); inv.Unrecorded == 0 || inv.Unrecorded != nsegs-len(recs) || inv.UnrecordedBytes <= 0 {
		t.Fatalf("inventory: %d segments (%d B) named by no record; bucket: %d segments, %d named by records", inv.Unrecorded, inv.UnrecordedBytes, nsegs, len(recs))
	}
	t.Logf("compacted segments %d, pages moved %d; bucket: %d records, %d segments, %d checkpoints", segs, pages, logs, nsegs, ckpts)
}

// Without retention nothing is ever deleted, so compaction would only add
// copies: it does not run.
func TestFlusher_CompactNeedsRetention(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := compactConfig(0)
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 12)
	if segs, _ := fl.Compactions(); segs != 0 {
		t.Fatalf("%d compacted segments without retention", segs)
	}
	if n := e.checkCompacted(ctx, vid, e.log.f.History(vid).Checkpoint); n != 0 {
		t.Fatalf("checkpoint names %d segments no record names", n)
	}
}

// A crash at each step of a compacting checkpoint leaves every retained
// snapshot readable from the state and from the bucket, before and after a
// GC round; a compacted segment no checkpoint names is collected as an
// orphan; the next attempt completes the checkpoint.
func TestFlusher_CompactCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	crash := errors.New("crash")
	var failCkptPut, failGenPut, failSweep atomic.Bool
	var sweepCrashes atomic.Int64
	var segPuts, genPuts atomic.Int64 // compacted segments' and generations' PUTs (flush rounds use Put)
	fs, err := faulty.New(objstore.NewMemory(), faulty.Config{Hook: func(_ context.Context, op faulty.Op, key string) error {
		if op == faulty.OpPutIfAbsent && strings.Contains(key, "/segments/") {
			segPuts.Add(1)
		}
		if op == faulty.OpPutIfAbsent && isGenKey(key) {
			genPuts.Add(1)
			if failGenPut.CompareAndSwap(true, false) {
				return crash
			}
		}
		if op == faulty.OpPutIfAbsent && strings.Contains(key, "/checkpoints/") && !isGenKey(key) && failCkptPut.CompareAndSwap(true, false) {
			return crash
		}
		// The sweep deletes a superseded generation's segments, then the
		// generation: fail the generation's delete, after its segments.
		if op == faulty.OpDelete && isGenKey(key) && failSweep.CompareAndSwap(true, false) {
			sweepCrashes.Add(1)
			return crash
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fs)
	cfg := compactConfig(6)
	cfg.CheckpointRecords = 0 // checkpoints only when the test asks
	cfg.OrphanGrace = 0
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	steps := []struct {
		name   string
		inject func()
	}{
		{"putting the compacted segment", func() { _ = fs.SetFault(faulty.OpPutIfAbsent, faulty.Fault{Err: crash, Times: 1}) }},
		{"after the compacted segment's put, response lost", func() {
			_ = fs.SetFault(faulty.OpPutIfAbsent, faulty.Fault{Err: crash, After: true, Times: 1})
		}},
		{"after the compacted segment's put", func() {
			flusher.SetCompactCrash(fl, func() error { flusher.SetCompactCrash(fl, nil); return crash })
		}},
		{"putting the checkpoint", func() { failCkptPut.Store(true) }},
		{"after the checkpoint's put, before raft", func() {
			flusher.SetCheckpointCrash(fl, func() error { flusher.SetCheckpointCrash(fl, nil); return crash })
		}},
		{"proposing", func() {
			e.log.fail = func(cmd []byte) error { e.log.fail = nil; return crash }
		}},
		{"putting a checkpoint generation", func() { failGenPut.Store(true) }},
		{"after a checkpoint generation's put", func() {
			flusher.SetGenCrash(fl, func() error { flusher.SetGenCrash(fl, nil); return crash })
		}},
	}
	read := func(name string) {
		t.Helper()
		e.reader, _ = flusher.NewReader(fs, flusher.ReaderConfig{Logger: slogDiscard()})
		e.check(ctx)
		e.checkCold(ctx)
	}
	for _, st := range steps {
		// Enough history that the checkpoint compacts: three checkpoints of
		// rewritten pages, GC'd to the retention.
		for range 3 {
			e.rounds(ctx, fl, vid, 3)
			if ok, err := fl.Checkpoint(ctx, vid); err != nil || !ok {
				t.Fatalf("%s: setup checkpoint: %v %v", st.name, ok, err)
			}
		}
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
		e.rounds(ctx, fl, vid, 3)
		before := e.log.f.History(vid)
		segPuts.Store(0)
		genPuts.Store(0)
		st.inject()
		if _, err := fl.Checkpoint(ctx, vid); err == nil {
			t.Fatalf("%s: checkpoint succeeded through the crash", st.name)
		}
		if segPuts.Load() == 0 {
			t.Fatalf("%s: the crashed checkpoint did not compact (setup)", st.name)
		}
		if strings.Contains(st.name, "generation") && genPuts.Load() == 0 {
			t.Fatalf("%s: the crashed checkpoint rewrote no generation (setup)", st.name)
		}
		fs.ClearFaults()
		if got := e.log.f.History(vid); got.Checkpoint != before.Checkpoint {
			t.Fatalf("%s: state moved to checkpoint %d", st.name, got.Checkpoint)
		}
		read(st.name)
		// A GC round that crashes in its sweep (after a superseded
		// generation's segments, before the generation), then every
		// retained snapshot again, then a whole GC round.
		failSweep.Store(true)
		_, _ = fl.GCOnce(ctx)
		failSweep.Store(false)
		read(st.name)
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatalf("%s: gc after the crash: %v", st.name, err)
		}
		read(st.name)
		// Orphan collection (grace 0) takes compacted segments no
		// checkpoint names and nothing a snapshot reads.
		if _, err := fl.CollectOrphans(ctx); err != nil {
			t.Fatalf("%s: collect orphans: %v", st.name, err)
		}
		read(st.name)
		e.noLeakedSegments(ctx, vid)
		// A new leader (a new flusher, same state) finishes the checkpoint.
		fl = e.flusher(cfg)
		if ok, err := fl.Checkpoint(ctx, vid); err != nil || !ok {
			t.Fatalf("%s: retried checkpoint: %v %v", st.name, ok, err)
		}
		e.checkCompacted(ctx, vid, e.log.f.History(vid).Checkpoint)
		read(st.name)
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := fl.CollectOrphans(ctx); err != nil {
			t.Fatal(err)
		}
		read(st.name)
		e.noLeakedSegments(ctx, vid)
	}
	if sweepCrashes.Load() == 0 {
		t.Fatal("no sweep crashed: the test did not exercise a half-done sweep")
	}
	t.Logf("%d sweeps crashed half done", sweepCrashes.Load())
}

// The planted bug graft_bug_compact_drop_page (compaction drops one live
// page from the checkpoint) is caught by TestFlusher_CompactMovesLivePages.
func TestFlusher_CompactPlantedBugIsCaught(t *testing.T) {
	plantedIsCaught(t, "graft_bug_compact_drop_page", "TestFlusher_CompactMovesLivePages", "the planted compaction bug was not caught")
}

// With retention and compaction, a checkpoint failing its checksum is
// skipped: the next checkpoint is built from the one before it (at or
// above the base), and GC and reads go on.
func TestFlusher_CompactCorruptCheckpointFallsBack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := compactConfig(8)
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 12)
	if _, err := fl.GCOnce(ctx); err != nil {
		t.Fatal(err)
	}
	h := e.log.f.History(vid)
	key := segment.CheckpointKey(vid, h.Checkpoint)
	b, err := e.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := e.store.Put(ctx, key, b); err != nil {
		t.Fatal(err)
	}
	e.reader, _ = flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard()})
	fl = e.flusher(cfg)
	e.rounds(ctx, fl, vid, 6)
	if got := e.log.f.History(vid).Checkpoint; got <= h.Checkpoint {
		t.Fatalf("no checkpoint past the corrupt %d: %d", h.Checkpoint, got)
	}
	for range 3 {
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
		e.check(ctx)
		e.checkCold(ctx)
		e.rounds(ctx, fl, vid, 4)
	}
	if segs, _ := fl.Compactions(); segs == 0 {
		t.Fatal("no compaction")
	}
}
