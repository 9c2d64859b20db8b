package flusher_test

import (
	"context"
	"errors"
	"testing"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

func checkpointConfig(records int) flusher.Config {
	cfg := manualConfig()
	cfg.CheckpointRecords = records
	cfg.CheckpointBytes = 0
	return cfg
}

// rounds runs n flush rounds of one or two commits each on vid, writing
// checkpoints after each.
func (e *env) rounds(ctx context.Context, fl *flusher.Flusher, vid volume.ID, n int) {
	e.t.Helper()
	for range n {
		for range 1 + e.rng.IntN(2) {
			e.commit(vid, 1+e.rng.IntN(3))
		}
		if err := fl.FlushAll(ctx); err != nil {
			e.t.Fatal(err)
		}
		if _, err := fl.CheckpointOnce(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
}

// checkCold reads every snapshot of every volume with a fresh reader from
// the bucket alone (no Raft state), as `graft volume read --object-store`
// does, and compares with the model.
func (e *env) checkCold(ctx context.Context) {
	e.t.Helper()
	all := make([]volume.PageIdx, 22)
	for i := range all {
		all[i] = volume.PageIdx(i + 1)
	}
	for vid, m := range e.models {
		h := e.log.f.History(vid)
		for lsn := max(1, h.Horizon); lsn <= h.Flushed; lsn++ {
			r, err := flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard()})
			if err != nil {
				e.t.Fatal(err)
			}
			snap, pages, err := r.ReadSnapshot(ctx, vid, lsn, all)
			if err != nil {
				e.t.Fatalf("cold %s@%d: %v", vid, lsn, err)
			}
			if snap.PageCount != m.pageCount[lsn] {
				e.t.Fatalf("cold %s@%d: page count %d, want %d", vid, lsn, snap.PageCount, m.pageCount[lsn])
			}
			for _, p := range pages {
				if want := m.pages[lsn][p.Idx]; string(p.Data) != string(want) {
					e.t.Fatalf("cold %s@%d page %d: got version %d, bytes differ", vid, lsn, p.Idx, p.LSN)
				}
			}
		}
	}
}

func TestFlusher_CheckpointBoundsHistoryAndReads(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(checkpointConfig(3))
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 11)
	h := e.log.f.History(vid)
	if h.Checkpoint == 0 || len(h.Froms) >= 3 {
		t.Fatalf("history after 11 rounds with a checkpoint every 3 records: %+v", h)
	}
	objs, err := e.store.List(ctx, segment.CheckpointPrefix(vid))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("%d checkpoints, want 3", len(objs))
	}
	listed, err := e.reader.History(ctx, vid)
	if err != nil {
		t.Fatal(err)
	}
	if listed.Checkpoint != h.Checkpoint {
		t.Fatalf("listed checkpoint %d, state %d", listed.Checkpoint, h.Checkpoint)
	}
	e.check(ctx)
	e.checkCold(ctx)
}

// A checkpoint failing its checksum is skipped: reads fall back to the one
// before it, and the reader counts it.
func TestReader_CorruptCheckpointFallsBack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(checkpointConfig(2))
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 7)
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
	r, err := flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard()})
	if err != nil {
		t.Fatal(err)
	}
	e.reader = r
	e.check(ctx)
	if r.BadCheckpoints() == 0 {
		t.Fatal("a corrupt checkpoint was read without being reported")
	}
	e.checkCold(ctx)
	// The next checkpoint is built past the corrupt one.
	e.rounds(ctx, fl, vid, 3)
	if got := e.log.f.History(vid).Checkpoint; got <= h.Checkpoint {
		t.Fatalf("no newer checkpoint after the corrupt %d: %d", h.Checkpoint, got)
	}
	e.check(ctx)
}

// A crash at each step of a checkpoint leaves every snapshot readable, and
// the next attempt completes it.
func TestFlusher_CheckpointCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	fs, err := faulty.New(objstore.NewMemory(), faulty.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fs)
	fl := e.flusher(checkpointConfig(0))
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 4)
	crash := errors.New("crash")
	steps := map[string]func(){
		"reading segment indexes": func() { _ = fs.SetFault(faulty.OpGetRange, faulty.Fault{Err: crash, Times: 1}) },
		"putting the checkpoint":  func() { _ = fs.SetFault(faulty.OpPutIfAbsent, faulty.Fault{Err: crash, Times: 1}) },
		"after the put, response lost": func() {
			_ = fs.SetFault(faulty.OpPutIfAbsent, faulty.Fault{Err: crash, After: true, Times: 1})
		},
		"after the put, before raft": func() {
			flusher.SetCheckpointCrash(fl, func() error { flusher.SetCheckpointCrash(fl, nil); return crash })
		},
		"proposing": func() {
			e.log.fail = func(cmd []byte) error { e.log.fail = nil; return crash }
		},
	}
	for name, inject := range steps {
		before := e.log.f.History(vid)
		inject()
		if _, err := fl.Checkpoint(ctx, vid); err == nil {
			t.Fatalf("%s: checkpoint succeeded through the crash", name)
		}
		fs.ClearFaults()
		if got := e.log.f.History(vid); got.Checkpoint != before.Checkpoint {
			t.Fatalf("%s: state moved to checkpoint %d", name, got.Checkpoint)
		}
		e.reader, _ = flusher.NewReader(fs, flusher.ReaderConfig{Logger: slogDiscard()})
		e.check(ctx)
		e.checkCold(ctx)
		if ok, err := fl.Checkpoint(ctx, vid); err != nil || !ok {
			t.Fatalf("%s: retried checkpoint: %v %v", name, ok, err)
		}
		e.check(ctx)
		e.rounds(ctx, fl, vid, 2)
	}
}

// A new cluster recovering from a bucket with checkpoints adopts each
// volume from its newest checkpoint: only the records after it.
func TestRecover_FromCheckpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(checkpointConfig(3))
	a, b := volume.MustNewID(), volume.MustNewID()
	e.rounds(ctx, fl, a, 7)
	e.rounds(ctx, fl, b, 3) // ends exactly at a checkpoint: no record after it
	wantA, wantB := e.log.f.History(a), e.log.f.History(b)
	if wantB.Checkpoint != wantB.Flushed {
		t.Fatalf("setup: b's checkpoint %d, flushed %d", wantB.Checkpoint, wantB.Flushed)
	}
	e.log = &log{f: fsm.New()}
	if err := flusher.Recover(ctx, e.log.f, e.store, e.reader, e.log, slogDiscard()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []fsm.History{wantA, wantB} {
		got := e.log.f.History(want.VID)
		if got.Checkpoint != want.Checkpoint || got.Flushed != want.Flushed || len(got.Froms) != len(want.Froms) {
			t.Fatalf("recovered %+v, want %+v", got, want)
		}
	}
	e.check(ctx)
}

// Commits and grafts over ranges that cross checkpoints agree with the
// commits read one by one (whose hashes check against the model).
func TestReader_RangesAcrossCheckpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(checkpointConfig(2))
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 9)
	h := e.log.f.History(vid)
	if h.Checkpoint < 4 {
		t.Fatalf("setup: checkpoint %d", h.Checkpoint)
	}
	m := e.models[vid]
	one := map[volume.LSN]fsm.CommitInfo{}
	for lsn := volume.LSN(1); lsn <= h.Flushed; lsn++ {
		c, err := e.reader.Commit(ctx, h, lsn)
		if err != nil || c.Hash != m.hashes[lsn] {
			t.Fatalf("commit %d: %v %v", lsn, c, err)
		}
		one[lsn] = c
	}
	for since := volume.LSN(0); since < h.Flushed; since++ {
		for until := since + 1; until <= h.Flushed; until++ {
			cs, err := e.reader.Commits(ctx, h, since, until, 0)
			if err != nil || len(cs) != int(until-since) {
				t.Fatalf("commits (%d, %d]: %d, %v", since, until, len(cs), err)
			}
			var want volume.PageSet
			for i, c := range cs {
				if c.LSN != since+1+volume.LSN(i) || c.Hash != m.hashes[c.LSN] {
					t.Fatalf("commits (%d, %d][%d] = lsn %d", since, until, i, c.LSN)
				}
				want.Union(one[c.LSN].Graft)
			}
			got, err := e.reader.Graft(ctx, h, since, until)
			if err != nil || !got.Equal(want) {
				t.Fatalf("graft (%d, %d] = %v, want %v (%v)", since, until, got.Slice(), want.Slice(), err)
			}
		}
	}
}
