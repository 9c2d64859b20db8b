package fsm_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

func TestFSM_TombstoneDeletesVolume(t *testing.T) {
	h := newHarness(t)
	vid, other := volume.MustNewID(), volume.MustNewID()
	h.flushOne(vid, 0)
	h.commit(commitCmd(vid, 1, 1, pw(1, 9)))
	h.commit(commitCmd(other, 0, 1, pw(1, 1)))
	pvs := []fsm.PlanVolume{{VID: vid, From: 2, To: 2, Segment: [16]byte{0x81, 2}}, {VID: other, From: 1, To: 1, Segment: [16]byte{0x81, 3}}}
	if bytes.Compare(vid[:], other[:]) > 0 {
		pvs[0], pvs[1] = pvs[1], pvs[0] // plans are sorted by volume
	}
	r := h.admin(plan(pvs...))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	before := h.f.BufferBytes()
	if r := h.admin(fsm.EncodeTombstone(fsm.Tombstone{VID: vid, TimeUnixMs: 5})); r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, err := h.f.SnapshotAt(vid, 0); !errors.Is(err, fsm.ErrVolumeDeleted) {
		t.Fatalf("read after delete: %v", err)
	}
	if _, err := h.f.ReadPages(vid, 0, []volume.PageIdx{1}); !errors.Is(err, fsm.ErrVolumeDeleted) {
		t.Fatalf("read pages after delete: %v", err)
	}
	if res := h.apply(fsm.EncodeCommit(commitCmd(vid, 2, 1, pw(1, 3)))).(*fsm.CommitResult); !errors.Is(res.Err, fsm.ErrVolumeDeleted) {
		t.Fatalf("commit after delete: %v", res.Err)
	}
	if got := h.f.BufferBytes(); got != before-volume.PageSize {
		t.Fatalf("buffer %d, want %d freed from %d", got, volume.PageSize, before)
	}
	if p := h.f.Plan(); p == nil || len(p.Volumes) != 1 || p.Volumes[0].VID != other {
		t.Fatalf("open round %+v still holds the deleted volume", p)
	}
	if u := h.f.Unpurged(); len(u) != 1 || u[0].VID != vid || u[0].TimeUnixMs != 5 {
		t.Fatalf("unpurged %+v", u)
	}
	data := snapshotBytes(t, h.f)
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Deleted(vid); !ok || !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("tombstone lost in a snapshot")
	}
	if r := h.admin(fsm.EncodeTombstone(fsm.Tombstone{VID: vid, Purged: true})); r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(h.f.Unpurged()) != 0 {
		t.Fatal("purged volume still listed")
	}
	if r := h.admin(fsm.EncodeTombstone(fsm.Tombstone{VID: other, Purged: true})); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("purge of a live volume: %v", r.Err)
	}
}
