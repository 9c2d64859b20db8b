package fsm_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

func TestFSM_GCRoundMovesHorizon(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	for i := range 6 {
		h.flushOne(vid, volume.LSN(i))
	}
	gc := func(hz, base volume.LSN) []byte {
		return fsm.EncodeGCPlan(&fsm.GCPlan{TimeUnixMs: 1, Volumes: []fsm.GCVolume{{VID: vid, Horizon: hz, Base: base}}})
	}
	// No checkpoint yet: the horizon cannot move.
	if r := h.admin(gc(2, 0)); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("gc above the checkpoint: %v", r.Err)
	}
	if r := h.admin(fsm.EncodeCheckpoint(vid, 4)); r.Err != nil {
		t.Fatal(r.Err)
	}
	r := h.admin(gc(3, 2))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	hist := h.f.History(vid)
	if hist.Horizon != 3 {
		t.Fatalf("horizon %d, want 3", hist.Horizon)
	}
	var re *fsm.RetentionError
	if err := hist.CheckRetained(2); !errors.As(err, &re) || re.Oldest != 3 || !errors.Is(err, fsm.ErrRetention) {
		t.Fatalf("CheckRetained(2) = %v", err)
	}
	if err := hist.CheckRetained(3); err != nil {
		t.Fatal(err)
	}
	if r := h.admin(gc(4, 4)); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("second round while one is open: %v", r.Err)
	}
	// The open round and the horizon survive a snapshot.
	data := snapshotBytes(t, h.f)
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if p := g.GC(); p == nil || p.Round != r.Round || p.Volumes[0].Base != 2 || g.History(vid).Horizon != 3 {
		t.Fatalf("restored gc %+v, history %+v", p, g.History(vid))
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("restore then snapshot is not the same bytes")
	}
	if d := h.admin(fsm.EncodeGCDone(r.Round)); d.Err != nil {
		t.Fatal(d.Err)
	}
	if r := h.admin(gc(2, 0)); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("horizon moved back: %v", r.Err)
	}
	if r := h.admin(gc(4, 4)); r.Err != nil {
		t.Fatal(r.Err)
	}
}
