package flusher_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// counting counts the requests a reader makes (every call is one request:
// ListAfter is one ListObjectsV2 on S3).
type counting struct {
	objstore.Store
	n atomic.Int64
}

func (c *counting) Get(ctx context.Context, key string) ([]byte, error) {
	c.n.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *counting) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.n.Add(1)
	return c.Store.GetRange(ctx, key, off, n)
}

func (c *counting) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	c.n.Add(1)
	return c.Store.List(ctx, prefix)
}

func (c *counting) ListAfter(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, error) {
	c.n.Add(1)
	return objstore.ListAfter(ctx, c.Store, prefix, startAfter, limit)
}

// commitIdx commits exactly the pages idxs to vid (random bytes) and
// records them in its model.
func (e *env) commitIdx(vid volume.ID, idxs ...volume.PageIdx) {
	e.t.Helper()
	var pages []volume.PageWrite
	for _, idx := range idxs {
		pages = append(pages, volume.PageWrite{Idx: idx, Data: e.randomPage()})
	}
	e.commitWrites(vid, pages, 1_700_000_000_000)
}

// checkHead reads the head of every volume cold from the bucket
// (ReadSnapshot at lsn 0) and compares it with the model at the snapshot it
// answers, which must be at least the state's flushed watermark.
func (e *env) checkHead(ctx context.Context) {
	e.t.Helper()
	all := make([]volume.PageIdx, 22)
	for i := range all {
		all[i] = volume.PageIdx(i + 1)
	}
	for vid, m := range e.models {
		h := e.log.f.History(vid)
		if h.Flushed == 0 {
			continue
		}
		r, err := flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard()})
		if err != nil {
			e.t.Fatal(err)
		}
		snap, pages, err := r.ReadSnapshot(ctx, vid, 0, all)
		if err != nil {
			e.t.Fatalf("cold head of %s: %v", vid, err)
		}
		if snap.LSN < h.Flushed || snap.LSN > m.head {
			e.t.Fatalf("cold head of %s at %d; flushed %d, head %d", vid, snap.LSN, h.Flushed, m.head)
		}
		for _, p := range pages {
			if want := m.pages[snap.LSN][p.Idx]; !bytes.Equal(p.Data, want) {
				e.t.Fatalf("cold head %s@%d page %d: got version %d, bytes differ", vid, snap.LSN, p.Idx, p.LSN)
			}
		}
	}
}

// deltaConfig has deltas on and checkpoints only when asked for.
func deltaConfig() flusher.Config {
	cfg := checkpointConfig(100000)
	cfg.CheckpointDeltas = true
	return cfg
}

// A cold clusterless head read costs at most 4 requests (LIST deltas, GET
// delta, GET base checkpoint, ranged GET page) however many records follow
// the checkpoint; without deltas it lists and reads every one of them.
func TestReader_HeadReadRequestsIndependentOfHistory(t *testing.T) {
	ctx := context.Background()
	for _, deltas := range []bool{false, true} {
		for _, after := range []int{20, 200} {
			t.Run(fmt.Sprintf("deltas=%v/records=%d", deltas, after), func(t *testing.T) {
				cs := &counting{Store: objstore.NewMemory()}
				e := newEnv(t, cs)
				cfg := deltaConfig()
				cfg.CheckpointDeltas = deltas
				fl := e.flusher(cfg)
				vid := volume.MustNewID()
				// Pages 1..10 before the checkpoint, then only 11..20: a read
				// of page 3 needs the base checkpoint, of page 15 the delta.
				for i := range 10 {
					e.commitIdx(vid, volume.PageIdx(1+i))
					if err := fl.FlushAll(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if ok, err := fl.Checkpoint(ctx, vid); err != nil || !ok {
					t.Fatalf("checkpoint: %v %v", ok, err)
				}
				for i := range after {
					e.commitIdx(vid, volume.PageIdx(11+i%10))
					if err := fl.FlushAll(ctx); err != nil {
						t.Fatal(err)
					}
				}
				head := e.models[vid].head
				for _, idx := range []volume.PageIdx{3, 15} {
					r, err := flusher.NewReader(cs, flusher.ReaderConfig{Logger: slogDiscard()})
					if err != nil {
						t.Fatal(err)
					}
					cs.n.Store(0)
					snap, pages, err := r.ReadSnapshot(ctx, vid, 0, []volume.PageIdx{idx})
					if err != nil {
						t.Fatal(err)
					}
					n := cs.n.Load()
					if snap.LSN != head || !bytes.Equal(pages[0].Data, e.models[vid].pages[head][idx]) {
						t.Fatalf("page %d: read %d@%d, want the head %d", idx, pages[0].LSN, snap.LSN, head)
					}
					switch {
					case deltas && n > 4:
						t.Fatalf("page %d: head read with deltas took %d requests, want <= 4", idx, n)
					case !deltas && n <= int64(after):
						t.Fatalf("page %d: head read without deltas took %d requests, want > %d (one per record)", idx, n, after)
					}
					t.Logf("page %d: %d requests", idx, n)
				}
				// A restarted node (state from Raft, cold reader) reads the
				// head with the delta at its flushed watermark: no LIST.
				r, err := flusher.NewReader(cs, flusher.ReaderConfig{Logger: slogDiscard()})
				if err != nil {
					t.Fatal(err)
				}
				cs.n.Store(0)
				pages, err := r.ReadPages(ctx, e.log.f.History(vid), head, []volume.PageIdx{3})
				if err != nil || !bytes.Equal(pages[0].Data, e.models[vid].pages[head][3]) {
					t.Fatalf("restarted node read: %v", err)
				}
				if n := cs.n.Load(); deltas && n > 3 {
					t.Fatalf("restarted node's first read took %d requests, want <= 3", n)
				}
				e.check(ctx)
				e.checkCold(ctx)
			})
		}
	}
}

// A crash at each step of a delta write (before its PUT, the PUT failing,
// its response lost, after it and before the round's end) fails the round;
// every snapshot still reads right from the state and cold from the bucket,
// and the retried round completes with the delta in place.
func TestFlusher_DeltaCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	fs, err := faulty.New(objstore.NewMemory(), faulty.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fs)
	e.reader, _ = flusher.NewReader(fs, flusher.ReaderConfig{Logger: slogDiscard()})
	cfg := checkpointConfig(3)
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 4)
	crash := errors.New("crash")
	deltaKeys := segment.DeltaPrefix(vid)
	steps := []struct {
		name   string
		inject func()
	}{
		{"between the record put and the delta put", func() {
			flusher.SetDeltaCrash(fl, func(step string) error {
				if step == "before" {
					flusher.SetDeltaCrash(fl, nil)
					return crash
				}
				return nil
			})
		}},
		{"the delta put fails", func() {
			_ = fs.SetFault(faulty.OpPutIfAbsent, faulty.Fault{KeyPrefix: deltaKeys, Err: crash, Times: 1})
		}},
		{"the delta put's response is lost", func() {
			_ = fs.SetFault(faulty.OpPutIfAbsent, faulty.Fault{KeyPrefix: deltaKeys, Err: crash, After: true, Times: 1})
		}},
		{"after the delta put, before the round's end", func() {
			flusher.SetDeltaCrash(fl, func(step string) error {
				if step == "after" {
					flusher.SetDeltaCrash(fl, nil)
					return crash
				}
				return nil
			})
		}},
	}
	for _, st := range steps {
		for range 2 {
			e.commit(vid, 1+e.rng.IntN(3))
		}
		before := e.log.f.History(vid)
		st.inject()
		if _, err := fl.FlushOnce(ctx, true); err == nil {
			t.Fatalf("%s: round succeeded through the crash", st.name)
		}
		fs.ClearFaults()
		if got := e.log.f.History(vid); got.Flushed != before.Flushed {
			t.Fatalf("%s: state flushed to %d through the crash", st.name, got.Flushed)
		}
		e.reader, _ = flusher.NewReader(fs, flusher.ReaderConfig{Logger: slogDiscard()})
		// (e.check also compares the listed log with the state, which
		// lacks the crashed round's record until the retry.)
		e.checkState(ctx)
		e.checkCold(ctx)
		e.checkHead(ctx)
		// A new leader (fresh flusher: no memo of the previous delta)
		// finishes the open round.
		fl = e.flusher(cfg)
		if err := fl.FlushAll(ctx); err != nil {
			t.Fatalf("%s: retry: %v", st.name, err)
		}
		h := e.log.f.History(vid)
		if _, err := fs.Get(ctx, segment.DeltaKey(vid, h.Flushed)); err != nil {
			t.Fatalf("%s: no delta at the flushed watermark %d after the retry: %v", st.name, h.Flushed, err)
		}
		if _, err := fl.CheckpointOnce(ctx); err != nil {
			t.Fatal(err)
		}
		e.check(ctx)
		e.checkCold(ctx)
		e.checkHead(ctx)
	}
}

// A delta that fails its checksum is reported and skipped: the head read
// falls back to the delta before it plus the records after that one (never
// an older head), and old reads to the one before.
func TestReader_CorruptDeltaFallsBack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(checkpointConfig(4))
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 9)
	h := e.log.f.History(vid)
	for _, lsn := range []volume.LSN{h.Flushed, h.Froms[0] - 1} {
		key := segment.DeltaKey(vid, lsn)
		b, err := e.store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		if err := e.store.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	r, err := flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard()})
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := r.ReadSnapshot(ctx, vid, 0, []volume.PageIdx{1})
	if err != nil || snap.LSN != h.Flushed {
		t.Fatalf("head read past a corrupt newest delta: %+v, %v; want lsn %d", snap, err, h.Flushed)
	}
	if r.BadCheckpoints() == 0 {
		t.Fatal("a corrupt delta was skipped without being reported")
	}
	e.reader = r
	e.check(ctx)
	e.checkCold(ctx)
	e.checkHead(ctx)
}

// With deltas off, a leader deletes the deltas left from when they were
// on before its first record of the volume: a clusterless head read never
// answers the old delta's snapshot.
func TestFlusher_DeltasOffDropsStaleDeltas(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(checkpointConfig(4))
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 3)
	cfg := checkpointConfig(4)
	cfg.CheckpointDeltas = false
	fl = e.flusher(cfg)
	e.rounds(ctx, fl, vid, 3)
	objs, err := e.store.List(ctx, segment.DeltaPrefix(vid))
	if err != nil || len(objs) != 0 {
		t.Fatalf("deltas left with deltas off: %d, %v", len(objs), err)
	}
	e.checkHead(ctx)
	e.checkCold(ctx)
}

// Past DeltaMaxPages a volume's checkpoint is due at once, whatever the
// record trigger says, and the next delta starts from it.
func TestFlusher_DeltaBoundTriggersCheckpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := deltaConfig() // record trigger far away
	cfg.DeltaMaxPages = 5
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	for i := range 4 {
		e.commitIdx(vid, volume.PageIdx(1+i))
		if err := fl.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := fl.CheckpointOnce(ctx); err != nil || n != 0 {
			t.Fatalf("checkpoint with a delta of %d pages: %d, %v", i+1, n, err)
		}
	}
	e.commitIdx(vid, 5, 6)
	if err := fl.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := fl.CheckpointOnce(ctx); err != nil || n != 1 {
		t.Fatalf("delta of 6 pages past the bound 5: %d checkpoints, %v", n, err)
	}
	e.commitIdx(vid, 7)
	if err := fl.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	h := e.log.f.History(vid)
	b, err := e.store.Get(ctx, segment.DeltaKey(vid, h.Flushed))
	if err != nil {
		t.Fatal(err)
	}
	d, err := segment.DecodeCheckpoint(b)
	if err != nil || d.Prev != h.Checkpoint || len(d.Pages) != 1 {
		t.Fatalf("delta after the checkpoint: base %d (want %d), %d pages (want 1), %v", d.Prev, h.Checkpoint, len(d.Pages), err)
	}
	e.check(ctx)
	e.checkCold(ctx)
	e.checkHead(ctx)
}

// checkState reads every snapshot of every volume through e.reader from
// the state's history (the cluster's read path) and compares with the
// model.
func (e *env) checkState(ctx context.Context) {
	e.t.Helper()
	all := make([]volume.PageIdx, 22)
	for i := range all {
		all[i] = volume.PageIdx(i + 1)
	}
	for vid, m := range e.models {
		h := e.log.f.History(vid)
		for lsn := max(1, h.Horizon); lsn <= h.Flushed; lsn++ {
			_, pages, err := e.reader.ReadSnapshotAt(ctx, h, lsn, all)
			if err != nil {
				e.t.Fatalf("%s@%d: %v", vid, lsn, err)
			}
			for _, p := range pages {
				if want := m.pages[lsn][p.Idx]; !bytes.Equal(p.Data, want) {
					e.t.Fatalf("%s@%d page %d: got version %d, bytes differ", vid, lsn, p.Idx, p.LSN)
				}
			}
		}
	}
}

// The planted delta bug (each delta omits its round's last commit) fails
// the head read test: the cold head read answers an older version.
func TestFlusher_DeltaPlantedBugIsCaught(t *testing.T) {
	plantedIsCaught(t, "graft_bug_delta_omit_last", "TestReader_HeadReadRequestsIndependentOfHistory", "the planted delta bug was not caught", "want the head")
}

// A delta stored under checkpoints/ is not a checkpoint: readers refuse it
// (counted) instead of taking its few pages for the whole snapshot.
func TestReader_DeltaUnderCheckpointsIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(deltaConfig())
	vid := volume.MustNewID()
	e.rounds(ctx, fl, vid, 3)
	h := e.log.f.History(vid)
	b, err := e.store.Get(ctx, segment.DeltaKey(vid, h.Flushed))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Put(ctx, segment.CheckpointKey(vid, h.Flushed), b); err != nil {
		t.Fatal(err)
	}
	r, err := flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Checkpoint(ctx, vid, h.Flushed); !errors.Is(err, flusher.ErrLayout) || r.BadCheckpoints() != 1 {
		t.Fatalf("delta read as a checkpoint: %v (%d bad)", err, r.BadCheckpoints())
	}
}
