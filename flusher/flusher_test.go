package flusher_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// log applies commands to an FSM in order, as a single-node Raft would.
// fail, when set, makes Propose fail before the entry is appended.
type log struct {
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
	fail  func(cmd []byte) error
}

func (l *log) Propose(_ context.Context, cmd []byte) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		if err := l.fail(cmd); err != nil {
			return nil, err
		}
	}
	l.index++
	return l.f.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: cmd}), nil
}

// model is what every snapshot of a volume must read as.
type model struct {
	pageCount map[volume.LSN]uint32
	pages     map[volume.LSN]map[volume.PageIdx][]byte // full page image at each lsn
	hashes    map[volume.LSN]volume.Hash
	head      volume.LSN
}

func newModel() *model {
	return &model{pageCount: map[volume.LSN]uint32{}, pages: map[volume.LSN]map[volume.PageIdx][]byte{0: {}}, hashes: map[volume.LSN]volume.Hash{}}
}

type env struct {
	t      *testing.T
	log    *log
	store  objstore.Store
	reader *flusher.Reader
	models map[volume.ID]*model
	rng    *rand.Rand
}

func newEnv(t *testing.T, store objstore.Store) *env {
	t.Helper()
	r, err := flusher.NewReader(store, flusher.ReaderConfig{PageCacheBytes: 16 * volume.PageSize, Segments: 4, Records: 4})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, log: &log{f: fsm.New()}, store: store, reader: r, models: map[volume.ID]*model{}, rng: rand.New(rand.NewPCG(1, 2))}
}

func (e *env) flusher(cfg flusher.Config) *flusher.Flusher {
	e.t.Helper()
	fl, err := flusher.New(cfg, e.log.f, e.store, e.reader, e.log, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return fl
}

func manualConfig() flusher.Config {
	cfg := flusher.DefaultConfig()
	cfg.Interval = 0
	cfg.OrphanInterval = 0
	return cfg
}

// commit commits random pages to vid and records them in its model.
func (e *env) commit(vid volume.ID, n int) {
	e.t.Helper()
	e.commitAt(vid, n, time.Now().UnixMilli())
}

// commitAt is commit with the commit time the proposer stamps.
func (e *env) commitAt(vid volume.ID, n int, timeUnixMs int64) {
	e.t.Helper()
	seen := map[volume.PageIdx]bool{}
	var pages []volume.PageWrite
	for range n {
		idx := volume.PageIdx(1 + e.rng.IntN(int(modelPageCount)))
		if seen[idx] {
			continue
		}
		seen[idx] = true
		pages = append(pages, volume.PageWrite{Idx: idx, Data: e.randomPage()})
	}
	e.commitWrites(vid, pages, timeUnixMs)
}

// modelPageCount is the page count of every commit the env makes.
const modelPageCount = uint32(20)

// randomPage returns a page of random bytes.
func (e *env) randomPage() []byte {
	data := make([]byte, volume.PageSize)
	for i := range data {
		data[i] = byte(e.rng.Uint32())
	}
	return data
}

// commitWrites commits pages to vid on its model's head, stamped
// timeUnixMs, and records the new snapshot in the model.
func (e *env) commitWrites(vid volume.ID, pages []volume.PageWrite, timeUnixMs int64) {
	e.t.Helper()
	m := e.models[vid]
	if m == nil {
		m = newModel()
		e.models[vid] = m
	}
	sorted, err := volume.ValidateCommit(modelPageCount, pages, volume.Limits{})
	if err != nil {
		e.t.Fatal(err)
	}
	hash := volume.CommitHash(vid, m.head+1, modelPageCount, sorted)
	resp, err := e.log.Propose(context.Background(), fsm.EncodeCommit(&fsm.CommitCommand{
		VID: vid, BaseLSN: m.head, PageCount: modelPageCount, TimeUnixMs: timeUnixMs, Hash: hash, Pages: sorted,
	}))
	if err != nil {
		e.t.Fatal(err)
	}
	if r := resp.(*fsm.CommitResult); r.Err != nil {
		e.t.Fatal(r.Err)
	}
	m.head++
	img := map[volume.PageIdx][]byte{}
	for k, v := range m.pages[m.head-1] {
		img[k] = v
	}
	for _, p := range sorted {
		img[p.Idx] = p.Data
	}
	m.pages[m.head] = img
	m.pageCount[m.head] = modelPageCount
	m.hashes[m.head] = hash
}

// check reads every snapshot of every volume through the reader (from the
// FSM's history and from a bucket listing) and compares with the model.
func (e *env) check(ctx context.Context) {
	e.t.Helper()
	all := make([]volume.PageIdx, 22)
	for i := range all {
		all[i] = volume.PageIdx(i + 1)
	}
	for vid, m := range e.models {
		h := e.log.f.History(vid)
		listed, err := e.reader.History(ctx, vid)
		if err != nil {
			e.t.Fatal(err)
		}
		// The bucket may hold a checkpoint the state has not committed yet
		// (a crash between its PUT and its Raft entry).
		if (listed.Checkpoint == h.Checkpoint && fmt.Sprint(listed.Froms) != fmt.Sprint(h.Froms)) || listed.Checkpoint < h.Checkpoint || listed.Flushed != h.Flushed {
			e.t.Fatalf("%s: listed history %v..%d, state %v..%d", vid, listed.Froms, listed.Flushed, h.Froms, h.Flushed)
		}
		if h.Horizon > 1 {
			if _, _, err := e.reader.ReadSnapshotAt(ctx, h, h.Horizon-1, all); !errors.Is(err, fsm.ErrRetention) {
				e.t.Fatalf("%s@%d below the horizon %d: %v, want ErrRetention", vid, h.Horizon-1, h.Horizon, err)
			}
		}
		for lsn := max(1, h.Horizon); lsn <= h.Flushed; lsn++ {
			snap, pages, err := e.reader.ReadSnapshotAt(ctx, h, lsn, all)
			if err != nil {
				e.t.Fatalf("%s@%d: %v", vid, lsn, err)
			}
			if snap.PageCount != m.pageCount[lsn] {
				e.t.Fatalf("%s@%d: page count %d, want %d", vid, lsn, snap.PageCount, m.pageCount[lsn])
			}
			for _, p := range pages {
				want := m.pages[lsn][p.Idx]
				if uint64(p.Idx) > uint64(snap.PageCount) {
					want = nil
				}
				if !bytes.Equal(p.Data, want) {
					e.t.Fatalf("%s@%d page %d: got version %d, bytes differ", vid, lsn, p.Idx, p.LSN)
				}
				if want != nil && !bytes.Equal(m.pages[p.LSN][p.Idx], want) {
					e.t.Fatalf("%s@%d page %d: served lsn %d does not hold these bytes", vid, lsn, p.Idx, p.LSN)
				}
			}
			c, err := e.reader.Commit(ctx, h, lsn)
			if err != nil || c.Hash != m.hashes[lsn] {
				e.t.Fatalf("%s@%d: commit %+v %v", vid, lsn, c, err)
			}
		}
	}
}

func TestFlusher_FlushThenRead(t *testing.T) { flushThenRead(t, s3test.URL(t)) }

// The same against SeaweedFS, an S3 server we did not write that checks
// signatures and conditional writes itself.
func TestSeaweed_FlushThenRead(t *testing.T) {
	t.Parallel()
	flushThenRead(t, s3test.StartSeaweed(t).FreshURL())
}

func flushThenRead(t *testing.T, url string) {
	ctx := context.Background()
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnv(t, store)
	cfg := manualConfig()
	cfg.MaxRoundBytes = 6 * volume.PageSize // force several rounds
	fl := e.flusher(cfg)
	a, b := volume.MustNewID(), volume.MustNewID()
	for round := range 4 {
		for range 5 {
			e.commit(a, 1+e.rng.IntN(3))
			e.commit(b, 1+e.rng.IntN(3))
		}
		if round == 1 {
			e.commit(a, 0) // a commit that writes no page
		}
		if err := fl.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.log.f.BufferBytes(); got != 0 {
			t.Fatalf("round %d: %d bytes still buffered after FlushAll", round, got)
		}
		e.check(ctx)
	}
	if len(e.log.f.History(a).Froms) < 4 {
		t.Fatalf("expected capped rounds, history %v", e.log.f.History(a).Froms)
	}
	// Nothing buffered: no trigger, no round.
	if ran, err := fl.FlushOnce(ctx, true); ran || err != nil {
		t.Fatalf("empty flush ran=%v err=%v", ran, err)
	}
	// Every object is in the layout: one log record per range, one segment
	// per range that wrote pages.
	objs, err := store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	logs, segs, deltas := 0, 0, 0
	for _, o := range objs {
		switch {
		case strings.Contains(o.Key, "/log/"):
			logs++
		case strings.Contains(o.Key, "/segments/"):
			segs++
		case strings.Contains(o.Key, "/deltas/"):
			deltas++
		default:
			t.Fatalf("unexpected key %q", o.Key)
		}
	}
	want := len(e.log.f.History(a).Froms) + len(e.log.f.History(b).Froms)
	if logs != want || segs > logs || segs < logs-1 || deltas != logs {
		t.Fatalf("%d log records, %d segments, %d deltas; want %d records, one segment per record with pages and one delta per record", logs, segs, deltas, want)
	}
}

func TestFlusher_Triggers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := manualConfig()
	cfg.TargetBytes = 4 * volume.PageSize
	cfg.MaxAge = time.Hour
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	e.commit(vid, 1)
	if ran, err := fl.FlushOnce(ctx, false); ran || err != nil {
		t.Fatalf("flush below target ran=%v err=%v", ran, err)
	}
	for e.log.f.BufferBytes() < cfg.TargetBytes {
		e.commit(vid, 3)
	}
	if ran, err := fl.FlushOnce(ctx, false); !ran || err != nil {
		t.Fatalf("flush at target ran=%v err=%v", ran, err)
	}
	e.commit(vid, 1)
	cfg.TargetBytes, cfg.MaxAge = 1<<30, time.Second
	fl = e.flusher(cfg)
	now := time.Now()
	flusher.SetClock(fl, func() time.Time { return now })
	if ran, err := fl.FlushOnce(ctx, false); ran || err != nil {
		t.Fatalf("flush of a commit younger than max age ran=%v err=%v", ran, err)
	}
	now = now.Add(time.Second)
	if ran, err := fl.FlushOnce(ctx, false); !ran || err != nil {
		t.Fatalf("flush of an old commit ran=%v err=%v", ran, err)
	}
	e.check(ctx)
}

// A leader dies after uploading part of a round: the next leader (a new
// Flusher on the same state) finishes exactly that round.
func TestFlusher_ResumeOpenRound(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	fs, err := faulty.New(mem, faulty.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fs)
	a, b := volume.MustNewID(), volume.MustNewID()
	for range 3 {
		e.commit(a, 2)
		e.commit(b, 2)
	}
	// Log records fail: segments land, the round stays open.
	if err := fs.SetFault(faulty.OpPutIfAbsent, faulty.Fault{Err: errors.New("injected")}); err != nil {
		t.Fatal(err)
	}
	old := e.flusher(manualConfig())
	if _, err := old.FlushOnce(ctx, true); err == nil {
		t.Fatal("round succeeded with log records failing")
	}
	plan := e.log.f.Plan()
	if plan == nil || len(plan.Volumes) != 2 {
		t.Fatalf("open plan %+v", plan)
	}
	if e.log.f.BufferBytes() == 0 {
		t.Fatal("buffer trimmed before the round finished")
	}
	// Commits go on meanwhile.
	e.commit(a, 1)
	fs.ClearFaults()
	done := e.flusher(manualConfig())
	ran, err := done.FlushOnce(ctx, false)
	if !ran || err != nil {
		t.Fatalf("resume ran=%v err=%v", ran, err)
	}
	for _, pv := range plan.Volumes {
		if h := e.log.f.History(pv.VID); h.Flushed != pv.To || len(h.Froms) != 1 {
			t.Fatalf("%s history %+v after resumed round, plan %+v", pv.VID, h, pv)
		}
	}
	if err := done.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	e.check(ctx)
}

// A retried round whose log record is already written (the response was
// lost) completes; a record with other commits is an alarm: the volume is
// quarantined and nothing is trimmed.
func TestFlusher_ExistingLogRecord(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	vid := volume.MustNewID()
	e.commit(vid, 2)
	e.commit(vid, 2)
	// The same record, written by an "earlier attempt" with another
	// segment upload: success, and our duplicate segment is dropped.
	bc, err := e.log.f.Buffered(vid, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := segment.NewID(time.Now(), cryptoRand{})
	rec := segment.Record{VID: vid, From: 1, To: 2, Segment: other}
	bld := segment.NewBuilder(vid)
	for _, c := range bc {
		rec.Commits = append(rec.Commits, segment.RecordCommit{LSN: c.LSN, PageCount: c.PageCount, TimeUnixMs: c.TimeUnixMs, Hash: c.Hash, Graft: c.Graft})
		if err := bld.AddCommit(c.LSN, c.Pages); err != nil {
			t.Fatal(err)
		}
	}
	segBytes, _ := bld.Encode()
	recBytes, _ := rec.AppendBinary(nil)
	if err := e.store.Put(ctx, segment.SegmentKey(vid, other), segBytes); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Put(ctx, segment.LogKey(vid, 1), recBytes); err != nil {
		t.Fatal(err)
	}
	fl := e.flusher(manualConfig())
	if err := fl.FlushAll(ctx); err != nil {
		t.Fatalf("flush over an identical record: %v", err)
	}
	segs, _ := e.store.List(ctx, "volumes/"+vid.String()+"/segments/")
	if len(segs) != 1 || !strings.HasSuffix(segs[0].Key, other.String()) {
		t.Fatalf("segments %v, want only the one the record names", segs)
	}
	e.check(ctx)

	// A conflicting record (another writer's commit 3) blocks the round.
	e.commit(vid, 1)
	bad := segment.Record{VID: vid, From: 3, To: 3, Commits: []segment.RecordCommit{{LSN: 3, PageCount: 1, Hash: volume.Hash{1}}}}
	badBytes, err := bad.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Put(ctx, segment.LogKey(vid, 3), badBytes); err != nil {
		t.Fatal(err)
	}
	if err := fl.FlushAll(ctx); !errors.Is(err, fsm.ErrQuarantined) || !strings.Contains(err.Error(), segment.LogKey(vid, 3)) {
		t.Fatalf("flush over a conflicting record: %v; want the volume quarantined, naming the record", err)
	}
	if e.log.f.History(vid).Flushed != 2 || e.log.f.BufferBytes() == 0 {
		t.Fatal("conflicting round trimmed the buffer")
	}
}

// S3 down: the flusher fails, nothing is trimmed; S3 back: it drains.
func TestFlusher_StoreDown(t *testing.T) {
	ctx := context.Background()
	fs, err := faulty.New(objstore.NewMemory(), faulty.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fs)
	vid := volume.MustNewID()
	e.commit(vid, 3)
	fs.Down()
	fl := e.flusher(manualConfig())
	for range 3 {
		if _, err := fl.FlushOnce(ctx, true); err == nil {
			t.Fatal("flush succeeded with the store down")
		}
		e.commit(vid, 1)
	}
	if e.log.f.History(vid).Flushed != 0 {
		t.Fatal("flushed watermark moved while the store was down")
	}
	if q := e.log.f.Quarantined(); len(q) != 0 {
		t.Fatalf("a store that is down quarantined %+v: only conflicts may", q)
	}
	fs.Up()
	if err := fl.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	if h := e.log.f.History(vid); h.Flushed != 4 || e.log.f.BufferBytes() != 0 {
		t.Fatalf("after the store returned: history %+v, buffer %d", h, e.log.f.BufferBytes())
	}
	e.check(ctx)
}

// The bucket alone rebuilds every volume: a fresh state adopts the heads
// and histories, and the chains continue.
func TestRecover(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(manualConfig())
	vids := []volume.ID{volume.MustNewID(), volume.MustNewID(), volume.MustNewID()}
	for i, vid := range vids {
		for range 3 + i {
			e.commit(vid, 2)
			if err := fl.FlushAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := e.log.f
	e.log = &log{f: fsm.New()}
	if err := flusher.Recover(ctx, e.log.f, e.store, e.reader, e.log, slogDiscard()); err != nil {
		t.Fatal(err)
	}
	if !e.log.f.Recovered() {
		t.Fatal("not marked recovered")
	}
	for _, vid := range vids {
		if got, want := e.log.f.Head(vid), old.Head(vid); got != want {
			t.Fatalf("%s: recovered head %v, want %v", vid, got, want)
		}
		if got, want := e.log.f.History(vid), old.History(vid); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: recovered history %v, want %v", vid, got, want)
		}
	}
	e.check(ctx)
	// The chain continues where the bucket ended.
	e.commit(vids[0], 1)
	if err := e.flusher(manualConfig()).FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	e.check(ctx)
	// Recover on a recovered state does nothing.
	if err := flusher.Recover(ctx, e.log.f, e.store, e.reader, e.log, slogDiscard()); err != nil {
		t.Fatal(err)
	}
}

func TestFlusher_CollectOrphans(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	vid := volume.MustNewID()
	e.commit(vid, 2)
	cfg := manualConfig()
	cfg.OrphanGrace = time.Minute
	fl := e.flusher(cfg)
	if err := fl.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	oldID, _ := segment.NewID(time.Now().Add(-time.Hour), cryptoRand{})
	newID, _ := segment.NewID(time.Now(), cryptoRand{})
	for _, sid := range []segment.ID{oldID, newID} {
		if err := e.store.Put(ctx, segment.SegmentKey(vid, sid), []byte("orphan")); err != nil {
			t.Fatal(err)
		}
	}
	n, err := fl.CollectOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("collected %d, %v; want the one old orphan", n, err)
	}
	if _, err := e.store.Get(ctx, segment.SegmentKey(vid, oldID)); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("old orphan still there: %v", err)
	}
	if _, err := e.store.Get(ctx, segment.SegmentKey(vid, newID)); err != nil {
		t.Fatalf("young orphan collected: %v", err)
	}
	e.check(ctx) // the referenced segment survived
}

type cryptoRand struct{}

func (cryptoRand) Read(b []byte) (int, error) { return crand.Read(b) }

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
