package fsm_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

// flushOne commits one page and flushes it as its own round.
func (h *harness) flushOne(vid volume.ID, base volume.LSN) {
	h.t.Helper()
	h.commit(commitCmd(vid, base, 1, pw(1, byte(base+1))))
	r := h.admin(plan(fsm.PlanVolume{VID: vid, From: base + 1, To: base + 1, Segment: [16]byte{0x81, byte(base + 1)}}))
	if r.Err != nil {
		h.t.Fatal(r.Err)
	}
	if r := h.admin(fsm.EncodeFlushDone(r.Round)); r.Err != nil {
		h.t.Fatal(r.Err)
	}
}

func TestFSM_CheckpointBoundsHistory(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	for i := range 5 {
		h.flushOne(vid, volume.LSN(i))
	}
	if st := h.f.CheckpointStats(vid); st.Records != 5 || st.Bytes != 5*volume.PageSize || st.Checkpoint != 0 {
		t.Fatalf("before: %+v", st)
	}
	for name, lsn := range map[string]volume.LSN{"lsn 0 region": 6, "past flushed": 9} {
		if r := h.admin(fsm.EncodeCheckpoint(vid, lsn)); !errors.Is(r.Err, fsm.ErrFlushRejected) {
			t.Fatalf("%s: %v", name, r.Err)
		}
	}
	if r := h.admin(fsm.EncodeCheckpoint(vid, 3)); r.Err != nil {
		t.Fatal(r.Err)
	}
	hist := h.f.History(vid)
	if hist.Checkpoint != 3 || !slices.Equal(hist.Froms, []volume.LSN{4, 5}) || hist.Flushed != 5 {
		t.Fatalf("history after checkpoint 3: %+v", hist)
	}
	if _, ok := hist.Locate(3); ok {
		t.Fatal("lsn 3 located after the checkpoint")
	}
	if i, ok := hist.Locate(5); !ok || i != 1 {
		t.Fatalf("Locate(5) = %d, %v", i, ok)
	}
	if r := h.admin(fsm.EncodeCheckpoint(vid, 3)); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("repeated checkpoint: %v", r.Err)
	}
	// A checkpoint at the flushed watermark empties the list.
	if r := h.admin(fsm.EncodeCheckpoint(vid, 5)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if st := h.f.CheckpointStats(vid); st.Records != 0 || st.Bytes != 0 || st.Checkpoint != 5 {
		t.Fatalf("after checkpoint 5: %+v", st)
	}
	h.flushOne(vid, 5)
	hist = h.f.History(vid)
	if hist.Checkpoint != 5 || !slices.Equal(hist.Froms, []volume.LSN{6}) || hist.Flushed != 6 {
		t.Fatalf("history after a later flush: %+v", hist)
	}

	// Snapshot v4 carries it; a restore and a re-snapshot give equal bytes.
	data := snapshotBytes(t, h.f)
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got := g.History(vid); got.Checkpoint != 5 || !slices.Equal(got.Froms, []volume.LSN{6}) {
		t.Fatalf("restored history %+v", got)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("restore then snapshot is not the same bytes")
	}
}

func TestFSM_AdoptWithCheckpoint(t *testing.T) {
	h := newHarness(t)
	a, b := volume.MustNewID(), volume.MustNewID()
	if r := h.admin(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: a, LSN: 9, PageCount: 2}, Froms: []volume.LSN{8, 9}, Checkpoint: 7})); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := h.f.History(a); got.Checkpoint != 7 || !slices.Equal(got.Froms, []volume.LSN{8, 9}) || got.Flushed != 9 {
		t.Fatalf("history %+v", got)
	}
	// Only a checkpoint, no record after it.
	if r := h.admin(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: b, LSN: 4, PageCount: 2}, Checkpoint: 4})); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := h.f.History(b); got.Checkpoint != 4 || len(got.Froms) != 0 || got.Flushed != 4 {
		t.Fatalf("history %+v", got)
	}
	for name, a := range map[string]*fsm.AdoptCommand{
		"froms not after checkpoint": {Head: volume.Snapshot{VID: volume.MustNewID(), LSN: 9}, Froms: []volume.LSN{7, 9}, Checkpoint: 7},
		"gap after checkpoint":       {Head: volume.Snapshot{VID: volume.MustNewID(), LSN: 9}, Froms: []volume.LSN{9}, Checkpoint: 7},
		"checkpoint below head":      {Head: volume.Snapshot{VID: volume.MustNewID(), LSN: 9}, Checkpoint: 7},
	} {
		if r := h.apply(fsm.EncodeAdopt(a)); r.(*fsm.CommitResult).Err == nil || !errors.Is(r.(*fsm.CommitResult).Err, fsm.ErrInvalidCommand) {
			t.Fatalf("%s: %v", name, r)
		}
	}
}
