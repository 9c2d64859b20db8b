package fsm_test

import (
	"errors"
	"testing"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

func (h *harness) batch(cs ...*fsm.CommitCommand) []*fsm.CommitResult {
	h.t.Helper()
	r, ok := h.apply(fsm.EncodeCommitBatch(cs)).(*fsm.CommitBatchResult)
	if !ok {
		h.t.Fatalf("apply returned %T, want *fsm.CommitBatchResult", r)
	}
	if len(r.Results) != len(cs) {
		h.t.Fatalf("%d results for %d commits", len(r.Results), len(cs))
	}
	return r.Results
}

func TestFSM_ApplyCommitBatch(t *testing.T) {
	t.Run("two commits on one base: one acceptance, one rejection", func(t *testing.T) {
		h := newHarness(t)
		vid := volume.MustNewID()
		rs := h.batch(commitCmd(vid, 0, 2, pw(1, 'a')), commitCmd(vid, 0, 2, pw(1, 'b')))
		if rs[0].Err != nil || rs[0].Snapshot.LSN != 1 || rs[0].Duplicate {
			t.Fatalf("first: %+v", rs[0])
		}
		var se *fsm.StaleError
		if !errors.As(rs[1].Err, &se) || se.Head.LSN != 1 || se.Base != 0 {
			t.Fatalf("second: %+v, want a stale rejection with head 1", rs[1])
		}
		r, err := h.f.ReadPages(vid, 0, []volume.PageIdx{1})
		if err != nil || r.Pages[0].LSN != 1 || r.Pages[0].Data[0] != 'a' {
			t.Fatalf("page 1 at the head: %+v %v, want the first commit's", r.Pages, err)
		}
	})
	t.Run("identical retries in one batch get one LSN", func(t *testing.T) {
		h := newHarness(t)
		vid := volume.MustNewID()
		c := commitCmd(vid, 0, 2, pw(1, 'a'))
		rs := h.batch(c, c, c)
		for i, r := range rs {
			if r.Err != nil || r.Snapshot.LSN != 1 || r.Hash != c.Hash || r.Duplicate != (i > 0) {
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		if h.f.Head(vid).LSN != 1 || h.f.BufferBytes() != volume.PageSize {
			t.Fatalf("head %v, buffer %d: want one commit", h.f.Head(vid), h.f.BufferBytes())
		}
	})
	t.Run("a chain on one volume and other volumes in order", func(t *testing.T) {
		h := newHarness(t)
		v1, v2 := volume.MustNewID(), volume.MustNewID()
		rs := h.batch(commitCmd(v1, 0, 1, pw(1, 'a')), commitCmd(v2, 0, 1, pw(1, 'b')), commitCmd(v1, 1, 1, pw(1, 'c')))
		if rs[0].Snapshot.LSN != 1 || rs[1].Snapshot.LSN != 1 || rs[2].Snapshot.LSN != 2 || rs[2].Snapshot.VID != v1 {
			t.Fatalf("results %+v %+v %+v", rs[0], rs[1], rs[2])
		}
	})
	t.Run("buffer limits are checked per commit in order", func(t *testing.T) {
		h := newHarness(t)
		vid := volume.MustNewID()
		a, b, c := commitCmd(vid, 0, 4, pw(1, 'a')), commitCmd(vid, 1, 4, pw(1, 'b')), commitCmd(volume.MustNewID(), 0, 4, pw(1, 'c'))
		for _, x := range []*fsm.CommitCommand{a, b, c} {
			x.MaxBufferBytes = 2 * volume.PageSize
		}
		rs := h.batch(a, b, c)
		if rs[0].Err != nil || rs[1].Err != nil || !errors.Is(rs[2].Err, fsm.ErrBufferFull) {
			t.Fatalf("results %v %v %v: want ok, ok, buffer full", rs[0].Err, rs[1].Err, rs[2].Err)
		}
	})
	t.Run("a malformed commit rejects the whole entry", func(t *testing.T) {
		h := newHarness(t)
		vid := volume.MustNewID()
		b := fsm.EncodeCommitBatch([]*fsm.CommitCommand{commitCmd(vid, 0, 2, pw(1, 'a')), commitCmd(vid, 1, 2, pw(1, 'b'))})
		b[len(b)-volume.PageSize-4+3] = 9 // second commit's page index: 9 >= page_count
		r, ok := h.apply(b).(*fsm.CommitResult)
		if !ok || !errors.Is(r.Err, fsm.ErrInvalidCommand) {
			t.Fatalf("got %T %+v, want ErrInvalidCommand", r, r)
		}
		if h.f.Volumes() != 0 {
			t.Fatal("a rejected batch changed state")
		}
	})
	t.Run("one commit encodes as a plain commit entry", func(t *testing.T) {
		h := newHarness(t)
		c := commitCmd(volume.MustNewID(), 0, 1, pw(1, 'a'))
		if r, ok := h.apply(fsm.EncodeCommitBatch([]*fsm.CommitCommand{c})).(*fsm.CommitResult); !ok || r.Err != nil {
			t.Fatalf("got %T %+v", r, r)
		}
	})
}
