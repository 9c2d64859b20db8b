package flusher_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// badRecord is a decodable log record of vid at from whose commit hash is
// not the cluster's: another writer's.
func badRecord(t *testing.T, vid volume.ID, from volume.LSN) []byte {
	t.Helper()
	rec := segment.Record{VID: vid, From: from, To: from, Commits: []segment.RecordCommit{{LSN: from, PageCount: 1, Hash: volume.Hash{1}}}}
	b, err := rec.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// One conflicting log record must not stop flushing for the other volumes:
// the conflicting volume is quarantined (through the log), the round closes
// for the others, and no round stays open.
func TestFlusher_ConflictQuarantinesVolume(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	a, b := volume.MustNewID(), volume.MustNewID()
	e.commit(a, 2)
	e.commit(b, 2)
	key := segment.LogKey(a, 1)
	if err := e.store.Put(ctx, key, badRecord(t, a, 1)); err != nil {
		t.Fatal(err)
	}
	fl := e.flusher(manualConfig())
	for range 3 {
		_, _ = fl.FlushOnce(ctx, true)
	}
	if h := e.log.f.History(b); h.Flushed != 1 {
		t.Fatalf("volume B not flushed after 3 rounds (history %+v): one conflicting volume blocks every other", h)
	}
	if p := e.log.f.Plan(); p != nil {
		t.Fatalf("round %d still open after 3 rounds: %+v", p.Round, p.Volumes)
	}
	q, ok := e.log.f.Quarantine(a)
	if !ok || q.Key != key || !strings.Contains(q.Reason, "hash") {
		t.Fatalf("quarantine of A = %+v, %v; want key %s and a reason naming the hash", q, ok, key)
	}
	if _, ok := e.log.f.Quarantine(b); ok {
		t.Fatal("B quarantined")
	}
	// A's buffered data still reads; its commits are refused naming the key.
	if r, err := e.log.f.ReadPages(a, 1, []volume.PageIdx{1, 2, 3}); err != nil || r.Snapshot.LSN != 1 {
		t.Fatalf("read of quarantined A's buffer: %+v %v", r.Snapshot, err)
	}
	resp, _ := e.log.Propose(ctx, fsm.EncodeCommit(&fsm.CommitCommand{VID: a, BaseLSN: 1, PageCount: 1, Hash: volume.Hash{9}}))
	var qe *fsm.QuarantineError
	if r := resp.(*fsm.CommitResult); !errors.As(r.Err, &qe) || !strings.Contains(r.Err.Error(), key) {
		t.Fatalf("commit to quarantined A: %v; want a QuarantineError naming %s", r.Err, key)
	}
	// B goes on committing and flushing; FlushAll reports A.
	e.commit(b, 1)
	if err := fl.FlushAll(ctx); !errors.Is(err, fsm.ErrQuarantined) || !strings.Contains(err.Error(), key) {
		t.Fatalf("FlushAll with A quarantined: %v; want ErrQuarantined naming %s", err, key)
	}
	if h := e.log.f.History(b); h.Flushed != 2 {
		t.Fatalf("B history %+v after FlushAll", h)
	}
	// The operator removes the object and lifts the quarantine: A flushes.
	if err := e.store.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := flusher.Unquarantine(ctx, e.log.f, e.store, e.reader, e.log, a); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.log.f.Quarantine(a); ok {
		t.Fatal("A still quarantined after Unquarantine")
	}
	if err := fl.FlushAll(ctx); err != nil {
		t.Fatalf("flush after unquarantine: %v", err)
	}
	e.check(ctx)
}

// An undecodable record at the key the round writes is conflict-class too;
// a store that is down is not: it retries and quarantines nothing.
func TestFlusher_UndecodableRecordQuarantines(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	a := volume.MustNewID()
	e.commit(a, 1)
	key := segment.LogKey(a, 1)
	if err := e.store.Put(ctx, key, make([]byte, 40)); err != nil {
		t.Fatal(err)
	}
	fl := e.flusher(manualConfig())
	if _, err := fl.FlushOnce(ctx, true); err != nil {
		t.Fatalf("round with one quarantined volume: %v", err)
	}
	if q, ok := e.log.f.Quarantine(a); !ok || q.Key != key || !strings.Contains(q.Reason, "undecodable") {
		t.Fatalf("quarantine %+v %v", q, ok)
	}
	if e.log.f.Plan() != nil {
		t.Fatal("round left open")
	}
}

// A bucket whose records run ahead of the state (a record past the next
// planned From that the state does not know) quarantines the volume rather
// than writing an overlapping record next to it.
func TestFlusher_BucketAheadQuarantines(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	a := volume.MustNewID()
	e.commit(a, 1)
	e.commit(a, 1)
	ahead := segment.LogKey(a, 2)
	if err := e.store.Put(ctx, ahead, badRecord(t, a, 2)); err != nil {
		t.Fatal(err)
	}
	fl := e.flusher(manualConfig())
	if _, err := fl.FlushOnce(ctx, true); err != nil {
		t.Fatalf("round: %v", err)
	}
	if _, err := e.store.Get(ctx, segment.LogKey(a, 1)); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("a record was written beside the bucket's newer one: %v", err)
	}
	if q, ok := e.log.f.Quarantine(a); !ok || q.Key != ahead {
		t.Fatalf("quarantine %+v %v; want key %s", q, ok, ahead)
	}
}

// Commits stamped by a leader whose clock runs far ahead still flush once
// MaxAge of this leader's own time has passed.
func TestFlusher_AgeUsesLocalClock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := manualConfig()
	cfg.MaxAge = time.Second
	cfg.TargetBytes = 1 << 30
	fl := e.flusher(cfg)
	now := time.Now()
	flusher.SetClock(fl, func() time.Time { return now })
	vid := volume.MustNewID()
	e.commitAt(vid, 1, now.Add(time.Hour).UnixMilli())
	if ran, err := fl.FlushOnce(ctx, false); ran || err != nil {
		t.Fatalf("flush of a fresh commit ran=%v err=%v", ran, err)
	}
	now = now.Add(cfg.MaxAge)
	if ran, err := fl.FlushOnce(ctx, false); !ran || err != nil {
		t.Fatalf("after MaxAge of local time: ran=%v err=%v; want a round (commit time is an hour ahead)", ran, err)
	}
	// Commits stamped far in the past do not flush at once either: the
	// clock starts when this flusher first sees them.
	e.commitAt(vid, 1, now.Add(-time.Hour).UnixMilli())
	if ran, err := fl.FlushOnce(ctx, false); ran || err != nil {
		t.Fatalf("flush of a commit seen just now ran=%v err=%v", ran, err)
	}
	now = now.Add(cfg.MaxAge)
	if ran, err := fl.FlushOnce(ctx, false); !ran || err != nil {
		t.Fatalf("second commit after MaxAge: ran=%v err=%v", ran, err)
	}
	e.check(ctx)
}

// Orphan collection keeps every segment a log record in the bucket names,
// even when the collecting state (restored from a backup, or another
// cluster's) does not know the record.
func TestFlusher_CollectOrphansKeepsRecordedSegments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	vid := volume.MustNewID()
	e.commit(vid, 2)
	e.commit(vid, 2)
	if err := e.flusher(manualConfig()).FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	// A second, recovered state that is older than the bucket.
	old := &log{f: fsm.New()}
	if _, err := old.Propose(ctx, fsm.EncodeRecovered()); err != nil {
		t.Fatal(err)
	}
	cfg := manualConfig()
	cfg.OrphanGrace = time.Minute
	fl, err := flusher.New(cfg, old.f, e.store, e.reader, old, slogDiscard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Hour)
	flusher.SetClock(fl, func() time.Time { return later })
	if _, err := fl.CollectOrphans(ctx); err != nil {
		t.Fatalf("collect: %v", err)
	}
	r, err := flusher.NewReader(e.store, flusher.ReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	all := make([]volume.PageIdx, 20)
	for i := range all {
		all[i] = volume.PageIdx(i + 1)
	}
	if _, _, err := r.ReadSnapshot(ctx, vid, 0, all); err != nil {
		t.Fatalf("read of flushed volume after another state's orphan collection: %v", err)
	}
	if q, ok := old.f.Quarantine(vid); !ok || q.Key != segment.LogKey(vid, 1) {
		t.Fatalf("volume the state does not know but the bucket holds: quarantine %+v %v", q, ok)
	}
}

// Recovery from a bucket in which one volume's last log record does not
// decode adopts every other volume and quarantines that one: it does not
// retry forever.
func TestRecover_DamagedRecordQuarantinesVolume(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(manualConfig())
	b := volume.MustNewID()
	e.commit(b, 2)
	if err := fl.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	a := volume.MustNewID()
	key := segment.LogKey(a, 1)
	if err := e.store.Put(ctx, key, make([]byte, 40)); err != nil {
		t.Fatal(err)
	}
	old := e.log.f
	e.log = &log{f: fsm.New()}
	if err := flusher.Recover(ctx, e.log.f, e.store, e.reader, e.log, slogDiscard()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if !e.log.f.Recovered() || e.log.f.Head(b) != old.Head(b) {
		t.Fatalf("B not recovered: recovered=%v head %v, want %v", e.log.f.Recovered(), e.log.f.Head(b), old.Head(b))
	}
	q, ok := e.log.f.Quarantine(a)
	if !ok || q.Key != key {
		t.Fatalf("damaged volume: quarantine %+v %v; want key %s", q, ok, key)
	}
	var qe *fsm.QuarantineError
	if _, err := e.log.f.SnapshotAt(a, 0); !errors.As(err, &qe) || !strings.Contains(err.Error(), key) {
		t.Fatalf("read of the damaged volume: %v; want a QuarantineError naming %s", err, key)
	}
	resp, _ := e.log.Propose(ctx, fsm.EncodeCommit(&fsm.CommitCommand{VID: a, BaseLSN: 0, PageCount: 1, Hash: volume.Hash{9}}))
	if r := resp.(*fsm.CommitResult); !errors.As(r.Err, &qe) {
		t.Fatalf("commit to the damaged volume: %v", r.Err)
	}
	e.check(ctx)
	// The operator replaces the damaged record with the right one (here:
	// removes it); unquarantine re-reads the bucket for the volume.
	if err := e.store.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := flusher.Unquarantine(ctx, e.log.f, e.store, e.reader, e.log, a); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.log.f.Quarantine(a); ok {
		t.Fatal("still quarantined")
	}
}
