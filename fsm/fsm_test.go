package fsm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

// harness feeds commands to an FSM as Raft would.
type harness struct {
	t     *testing.T
	f     *fsm.FSM
	index uint64
}

func newHarness(t *testing.T) *harness { return &harness{t: t, f: fsm.New()} }

func page(b byte) []byte { return bytes.Repeat([]byte{b}, volume.PageSize) }

func commitCmd(vid volume.ID, base volume.LSN, pageCount uint32, pages ...volume.PageWrite) *fsm.CommitCommand {
	return &fsm.CommitCommand{
		VID: vid, BaseLSN: base, PageCount: pageCount, TimeUnixMs: 1700000000000,
		Hash:  volume.CommitHash(vid, base+1, pageCount, pages),
		Pages: pages,
	}
}

func (h *harness) apply(data []byte) any {
	h.index++
	return h.f.Apply(&raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: data})
}

func (h *harness) commit(c *fsm.CommitCommand) *fsm.CommitResult {
	h.t.Helper()
	r, ok := h.apply(fsm.EncodeCommit(c)).(*fsm.CommitResult)
	if !ok {
		h.t.Fatalf("apply returned %T", r)
	}
	return r
}

func pw(idx volume.PageIdx, b byte) volume.PageWrite {
	return volume.PageWrite{Idx: idx, Data: page(b)}
}

func TestFSM_Apply(t *testing.T) {
	vid := volume.MustNewID()
	h := newHarness(t)

	r := h.commit(commitCmd(vid, 0, 4, pw(1, 'a'), pw(3, 'b')))
	if r.Err != nil || r.Snapshot.LSN != 1 || r.Snapshot.PageCount != 4 || r.Duplicate {
		t.Fatalf("first commit: %+v", r)
	}
	r = h.commit(commitCmd(vid, 1, 4, pw(3, 'c')))
	if r.Err != nil || r.Snapshot.LSN != 2 {
		t.Fatalf("second commit: %+v", r)
	}

	t.Run("stale base is rejected with the head", func(t *testing.T) {
		r := h.commit(commitCmd(vid, 1, 4, pw(2, 'x')))
		var se *fsm.StaleError
		if !errors.As(r.Err, &se) || !errors.Is(r.Err, fsm.ErrStale) || se.Head.LSN != 2 || se.Base != 1 {
			t.Fatalf("got %+v", r)
		}
		if h.f.Head(vid).LSN != 2 {
			t.Fatalf("rejection changed the head: %v", h.f.Head(vid))
		}
	})
	t.Run("future base is rejected", func(t *testing.T) {
		r := h.commit(commitCmd(vid, 7, 4, pw(2, 'x')))
		if !errors.Is(r.Err, fsm.ErrStale) {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("identical retry returns the original result", func(t *testing.T) {
		r := h.commit(commitCmd(vid, 1, 4, pw(3, 'c')))
		if r.Err != nil || !r.Duplicate || r.Snapshot.LSN != 2 {
			t.Fatalf("got %+v", r)
		}
		if h.f.Head(vid).LSN != 2 {
			t.Fatalf("retry created a new LSN: %v", h.f.Head(vid))
		}
	})
	t.Run("reads at every LSN", func(t *testing.T) {
		cases := []struct {
			lsn      volume.LSN
			idx      volume.PageIdx
			want     byte
			wantLSN  volume.LSN
			wantZero bool
		}{
			{1, 1, 'a', 1, false},
			{1, 3, 'b', 1, false},
			{2, 3, 'c', 2, false},
			{0, 3, 'c', 2, false},
			{2, 1, 'a', 1, false},
			{2, 2, 0, 0, true},
			{2, 9, 0, 0, true}, // beyond page_count
		}
		for _, c := range cases {
			r, err := h.f.ReadPages(vid, c.lsn, []volume.PageIdx{c.idx})
			snap, got := r.Snapshot, r.Pages
			if err != nil {
				t.Fatalf("lsn %d idx %d: %v", c.lsn, c.idx, err)
			}
			if c.lsn != 0 && snap.LSN != c.lsn {
				t.Fatalf("snapshot %v, want lsn %d", snap, c.lsn)
			}
			if got[0].LSN != c.wantLSN || (c.wantZero && got[0].Data != nil) || (!c.wantZero && !bytes.Equal(got[0].Data, page(c.want))) {
				t.Fatalf("lsn %d idx %d: version %d", c.lsn, c.idx, got[0].LSN)
			}
		}
		if _, err := h.f.ReadPages(vid, 3, []volume.PageIdx{1}); !errors.Is(err, fsm.ErrFutureLSN) {
			t.Fatalf("future read: %v", err)
		}
	})
	t.Run("grafts and commits", func(t *testing.T) {
		snap, set, err := h.f.Graft(vid, 0, 0)
		if err != nil || snap.LSN != 2 || !set.Equal(volume.NewPageSet(1, 3)) {
			t.Fatalf("graft (0,2]: %v %v %v", snap, set.Slice(), err)
		}
		_, set, _ = h.f.Graft(vid, 1, 2)
		if !set.Equal(volume.NewPageSet(3)) {
			t.Fatalf("graft (1,2]: %v", set.Slice())
		}
		_, cs, more, err := h.f.Commits(vid, 0, 0, 1)
		if err != nil || len(cs) != 1 || !more || cs[0].LSN != 1 {
			t.Fatalf("commits: %+v more=%v err=%v", cs, more, err)
		}
	})
}

func TestFSM_BufferLimits(t *testing.T) {
	h := newHarness(t)
	a, b := volume.MustNewID(), volume.MustNewID()
	c := commitCmd(a, 0, 2, pw(1, 1), pw(2, 2))
	c.MaxVolumeBufferBytes = 3 * volume.PageSize
	if r := h.commit(c); r.Err != nil {
		t.Fatal(r.Err)
	}
	c = commitCmd(a, 1, 2, pw(1, 3), pw(2, 4))
	c.MaxVolumeBufferBytes = 3 * volume.PageSize
	if r := h.commit(c); !errors.Is(r.Err, fsm.ErrBufferFull) {
		t.Fatalf("volume limit: %+v", r)
	}
	c = commitCmd(b, 0, 2, pw(1, 3), pw(2, 4))
	c.MaxBufferBytes = 3 * volume.PageSize
	if r := h.commit(c); !errors.Is(r.Err, fsm.ErrBufferFull) {
		t.Fatalf("node limit: %+v", r)
	}
	if h.f.Head(a).LSN != 1 || h.f.Head(b).LSN != 0 || h.f.BufferBytes() != 2*volume.PageSize {
		t.Fatalf("a refused commit changed state: %v %v %d", h.f.Head(a), h.f.Head(b), h.f.BufferBytes())
	}
}

func TestFSM_InvalidCommand(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	good := fsm.EncodeCommit(commitCmd(vid, 0, 1, pw(1, 1)))
	for name, data := range map[string][]byte{
		"empty":        nil,
		"bad magic":    append([]byte{'X'}, good[1:]...),
		"truncated":    good[:len(good)-1],
		"unknown kind": {'G', 1, 99},
	} {
		r, ok := h.apply(data).(*fsm.CommitResult)
		if !ok || !errors.Is(r.Err, fsm.ErrInvalidCommand) {
			t.Errorf("%s: got %+v", name, r)
		}
	}
	if h.f.Head(vid).LSN != 0 {
		t.Fatal("an invalid command changed state")
	}
	if h.f.Applied() != h.index {
		t.Fatalf("applied index %d, want %d", h.f.Applied(), h.index)
	}
}

func TestFSM_NodeDirectory(t *testing.T) {
	h := newHarness(t)
	h.apply(fsm.EncodeRegister(fsm.NodeInfo{ID: "n1", RaftAddr: "r1", APIAddr: "a1"}))
	h.apply(fsm.EncodeRegister(fsm.NodeInfo{ID: "n2", RaftAddr: "r2", APIAddr: "a2"}))
	h.apply(fsm.EncodeUnregister("n1"))
	nodes := h.f.Nodes()
	if len(nodes) != 1 || nodes["n2"].APIAddr != "a2" {
		t.Fatalf("nodes: %+v", nodes)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func snapshotBytes(t *testing.T, f *fsm.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	return sink.Bytes()
}

func TestFSM_SnapshotRestore(t *testing.T) {
	h := newHarness(t)
	a, b := volume.MustNewID(), volume.MustNewID()
	h.apply(fsm.EncodeRegister(fsm.NodeInfo{ID: "n1", RaftAddr: "r1", APIAddr: "a1"}))
	h.commit(commitCmd(a, 0, 3, pw(1, 1), pw(3, 3)))
	h.commit(commitCmd(a, 1, 5, pw(3, 4), pw(5, 5)))
	h.commit(commitCmd(b, 0, 1, pw(1, 9)))
	h.commit(commitCmd(b, 1, 0)) // empty commit shrinking the volume
	data := snapshotBytes(t, h.f)

	// A snapshot taken now is unaffected by later applies.
	snap, _ := h.f.Snapshot()
	h.commit(commitCmd(a, 2, 5, pw(2, 7)))
	var later memSink
	if err := snap.Persist(&later); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(later.Bytes(), data) {
		t.Fatal("snapshot changed after a later apply")
	}

	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if g.Applied() != 5 {
		t.Fatalf("restored applied index %d, want 5", g.Applied())
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("restore then snapshot is not the same bytes")
	}
	if g.Head(a).LSN != 2 || g.Head(b) != (volume.Snapshot{VID: b, LSN: 2, PageCount: 0}) {
		t.Fatalf("heads %v %v", g.Head(a), g.Head(b))
	}
	r, err := g.ReadPages(a, 1, []volume.PageIdx{3})
	vers := r.Pages
	if err != nil || vers[0].LSN != 1 || !bytes.Equal(vers[0].Data, page(3)) {
		t.Fatalf("page 3 at lsn 1: %+v %v", vers, err)
	}
	if g.BufferBytes() != 5*volume.PageSize {
		t.Fatalf("buffer bytes %d", g.BufferBytes())
	}
	// The restored FSM continues the chain and recognizes retries.
	gh := &harness{t: t, f: g, index: g.Applied()}
	if r := gh.commit(commitCmd(a, 1, 5, pw(3, 4), pw(5, 5))); !r.Duplicate || r.Snapshot.LSN != 2 {
		t.Fatalf("retry after restore: %+v", r)
	}
	if r := gh.commit(commitCmd(a, 2, 5, pw(2, 7))); r.Err != nil || r.Snapshot.LSN != 3 {
		t.Fatalf("commit after restore: %+v", r)
	}
}

func TestFSM_RestoreFailureKeepsState(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	h.commit(commitCmd(vid, 0, 1, pw(1, 1)))
	data := snapshotBytes(t, h.f)

	target := newHarness(t)
	other := volume.MustNewID()
	target.commit(commitCmd(other, 0, 1, pw(1, 2)))
	before := snapshotBytes(t, target.f)

	corrupt := bytes.Clone(data)
	corrupt[len(corrupt)/2] ^= 0xff
	for name, b := range map[string][]byte{
		"flipped byte": corrupt,
		"truncated":    data[:len(data)-3],
		"trailing":     append(bytes.Clone(data), 0),
		"empty":        nil,
	} {
		err := target.f.Restore(io.NopCloser(bytes.NewReader(b)))
		if !errors.Is(err, fsm.ErrBadSnapshot) {
			t.Errorf("%s: err %v", name, err)
		}
		if !bytes.Equal(snapshotBytes(t, target.f), before) {
			t.Fatalf("%s: failed restore changed state", name)
		}
	}
}

func TestFSM_WaitLSN(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan volume.Snapshot)
	go func() {
		s, err := h.f.WaitLSN(ctx, vid, 2)
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	h.commit(commitCmd(vid, 0, 1, pw(1, 1)))
	h.commit(commitCmd(vid, 1, 1, pw(1, 2)))
	if s := <-done; s.LSN != 2 {
		t.Fatalf("woke at %v", s)
	}
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := h.f.WaitLSN(short, vid, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past head: %v", err)
	}
}
