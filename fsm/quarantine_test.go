package fsm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

func TestFSM_Quarantine(t *testing.T) {
	h := newHarness(t)
	a, b := volume.MustNewID(), volume.MustNewID()
	if bytes.Compare(a[:], b[:]) > 0 { // a plan lists volumes sorted; IDs of one millisecond sort at random
		a, b = b, a
	}
	h.commit(commitCmd(a, 0, 2, pw(1, 1)))
	h.commit(commitCmd(a, 1, 2, pw(2, 2)))
	h.commit(commitCmd(b, 0, 1, pw(1, 3)))
	r := h.admin(plan(fsm.PlanVolume{VID: a, From: 1, To: 2}, fsm.PlanVolume{VID: b, From: 1, To: 1}))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	key := "volumes/" + a.String() + "/log/00000000000000000001"
	if q := h.admin(fsm.EncodeQuarantine(fsm.Quarantine{VID: a, Key: key, Reason: "lsn 1: stored hash 01, ours 02"})); q.Err != nil {
		t.Fatal(q.Err)
	}
	qIndex := h.index
	// The quarantine narrows the open round to the other volume.
	if p := h.f.Plan(); p == nil || p.Round != r.Round || len(p.Volumes) != 1 || p.Volumes[0].VID != b {
		t.Fatalf("round after quarantine: %+v", p)
	}
	// A second quarantine keeps the first reason.
	h.admin(fsm.EncodeQuarantine(fsm.Quarantine{VID: a, Key: "other", Reason: "other"}))
	if q, ok := h.f.Quarantine(a); !ok || q.Key != key || q.Index != qIndex {
		t.Fatalf("quarantine %+v %v", q, ok)
	}
	// Commits are refused naming the key; an identical retry keeps its ack.
	c := h.commit(commitCmd(a, 2, 2, pw(1, 9)))
	var qe *fsm.QuarantineError
	if !errors.As(c.Err, &qe) || !errors.Is(c.Err, fsm.ErrQuarantined) || !strings.Contains(c.Err.Error(), key) {
		t.Fatalf("commit to a quarantined volume: %+v", c)
	}
	if c := h.commit(commitCmd(a, 1, 2, pw(2, 2))); !c.Duplicate || c.Snapshot.LSN != 2 {
		t.Fatalf("retry of an accepted commit: %+v", c)
	}
	// Reads of the buffer still work; the volume is not a flush candidate
	// and a plan naming it is rejected.
	if pr, err := h.f.ReadPages(a, 2, []volume.PageIdx{1, 2}); err != nil || pr.Pages[1].LSN != 2 {
		t.Fatalf("read of a quarantined volume: %+v %v", pr, err)
	}
	if d := h.admin(fsm.EncodeFlushDone(r.Round)); d.Err != nil {
		t.Fatal(d.Err)
	}
	if h.f.History(b).Flushed != 1 || h.f.History(a).Flushed != 0 {
		t.Fatalf("histories after the narrowed round: a %+v b %+v", h.f.History(a), h.f.History(b))
	}
	if cands := h.f.FlushCandidates(); len(cands) != 0 {
		t.Fatalf("candidates %+v, want none (a is quarantined)", cands)
	}
	if p := h.admin(plan(fsm.PlanVolume{VID: a, From: 1, To: 2})); !errors.Is(p.Err, fsm.ErrFlushRejected) {
		t.Fatalf("plan of a quarantined volume: %+v", p)
	}
	// Quarantining the last volume of a round closes it.
	h.commit(commitCmd(b, 1, 1, pw(1, 4)))
	r2 := h.admin(plan(fsm.PlanVolume{VID: b, From: 2, To: 2}))
	h.admin(fsm.EncodeQuarantine(fsm.Quarantine{VID: b, Key: "k", Reason: "r"}))
	if p := h.f.Plan(); p != nil {
		t.Fatalf("round %d still open with its only volume quarantined: %+v", r2.Round, p)
	}
	if qs := h.f.Quarantined(); len(qs) != 2 {
		t.Fatalf("quarantined %+v", qs)
	}
	// Lifting: the volume flushes and commits again.
	if u := h.admin(fsm.EncodeUnquarantine(a)); u.Err != nil {
		t.Fatal(u.Err)
	}
	if u := h.admin(fsm.EncodeUnquarantine(a)); !errors.Is(u.Err, fsm.ErrFlushRejected) {
		t.Fatalf("second unquarantine: %+v", u)
	}
	if c := h.commit(commitCmd(a, 2, 2, pw(1, 9))); c.Err != nil || c.Snapshot.LSN != 3 {
		t.Fatalf("commit after unquarantine: %+v", c)
	}
	if cands := h.f.FlushCandidates(); len(cands) != 1 || cands[0].VID != a {
		t.Fatalf("candidates after unquarantine %+v", cands)
	}
}

// A volume quarantined before its head was known (by recovery) answers
// reads and commits with the quarantine, and may be adopted once repaired.
func TestFSM_QuarantineUnknownVolume(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	h.admin(fsm.EncodeQuarantine(fsm.Quarantine{VID: vid, Key: "volumes/x/log/1", Reason: "undecodable"}))
	h.admin(fsm.EncodeRecovered())
	var qe *fsm.QuarantineError
	if _, err := h.f.SnapshotAt(vid, 0); !errors.As(err, &qe) {
		t.Fatalf("snapshot of an unknown quarantined volume: %v", err)
	}
	if _, err := h.f.ReadPages(vid, 0, []volume.PageIdx{1}); !errors.As(err, &qe) {
		t.Fatalf("read: %v", err)
	}
	if c := h.commit(commitCmd(vid, 0, 1, pw(1, 1))); !errors.As(c.Err, &qe) {
		t.Fatalf("commit: %+v", c)
	}
	// Adopt after recovery is allowed for it (and only for it).
	if r := h.admin(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 4, PageCount: 1}, Froms: []volume.LSN{1}})); r.Err != nil {
		t.Fatalf("adopt of the repaired volume: %v", r.Err)
	}
	h.admin(fsm.EncodeUnquarantine(vid))
	if c := h.commit(commitCmd(vid, 4, 1, pw(1, 1))); c.Err != nil || c.Snapshot.LSN != 5 {
		t.Fatalf("commit after repair: %+v", c)
	}
}

func TestFSM_Identity(t *testing.T) {
	h := newHarness(t)
	if h.f.ClusterID() != "" {
		t.Fatal("new FSM has an identity")
	}
	if r := h.admin(fsm.EncodeIdentity("c1")); r.Err != nil || h.f.ClusterID() != "c1" {
		t.Fatalf("set identity: %+v %q", r, h.f.ClusterID())
	}
	if r := h.admin(fsm.EncodeIdentity("c1")); r.Err != nil {
		t.Fatalf("same identity again: %v", r.Err)
	}
	if r := h.admin(fsm.EncodeIdentity("c2")); !errors.Is(r.Err, fsm.ErrFlushRejected) || h.f.ClusterID() != "c1" {
		t.Fatalf("other identity: %+v, id %q", r, h.f.ClusterID())
	}
}

func TestFSM_QuarantineSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	a, b, c := volume.MustNewID(), volume.MustNewID(), volume.MustNewID()
	h.commit(commitCmd(a, 0, 1, pw(1, 1)))
	h.commit(commitCmd(b, 0, 1, pw(1, 2)))
	h.admin(fsm.EncodeIdentity("cluster-1"))
	h.admin(fsm.EncodeQuarantine(fsm.Quarantine{VID: c, Key: "kc", Reason: "undecodable"}))
	h.admin(fsm.EncodeQuarantine(fsm.Quarantine{VID: a, Key: "ka", Reason: "hash"}))
	h.admin(plan(fsm.PlanVolume{VID: b, From: 1, To: 1}))
	data := snapshotBytes(t, h.f)
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("restore then snapshot is not the same bytes")
	}
	if g.ClusterID() != "cluster-1" {
		t.Fatalf("cluster id %q", g.ClusterID())
	}
	if qs, want := g.Quarantined(), h.f.Quarantined(); len(qs) != 2 || qs[0] != want[0] || qs[1] != want[1] {
		t.Fatalf("quarantined %+v, want %+v", qs, want)
	}
	if _, err := g.SnapshotAt(c, 0); !errors.Is(err, fsm.ErrQuarantined) {
		t.Fatalf("unknown quarantined volume after restore: %v", err)
	}
}

// Snapshots written before quarantine existed (version 2) still restore,
// with no identity and nothing quarantined.
func TestFSM_RestoreVersion2(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	h.commit(commitCmd(vid, 0, 1, pw(1, 1)))
	h.admin(fsm.EncodeRecovered())
	cur := snapshotBytes(t, h.f)
	// Version 3 adds cluster_id (2 bytes when empty) and the quarantine
	// count (4 bytes), version 4 the revoked count (4), version 5 the
	// checkpoint count, gc flag and tombstone count (12 bytes), before the
	// checksum.
	body := bytes.Clone(cur[:len(cur)-4-12-4-6])
	binary.BigEndian.PutUint32(body[8:], 2)
	v2 := binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(v2))); err != nil {
		t.Fatalf("restore version 2: %v", err)
	}
	if g.Head(vid).LSN != 1 || !g.Recovered() || g.ClusterID() != "" || len(g.Quarantined()) != 0 {
		t.Fatalf("restored v2: head %v recovered %v id %q quarantined %v", g.Head(vid), g.Recovered(), g.ClusterID(), g.Quarantined())
	}
	if !bytes.Equal(snapshotBytes(t, g), cur) {
		t.Fatal("v2 restored then snapshotted differs from the current snapshot of the same state")
	}
}

func TestFSM_QuarantineCommandsInvalid(t *testing.T) {
	vid := volume.MustNewID()
	for name, data := range map[string][]byte{
		"quarantine empty key":     fsm.EncodeQuarantine(fsm.Quarantine{VID: vid, Reason: "r"}),
		"quarantine truncated":     fsm.EncodeQuarantine(fsm.Quarantine{VID: vid, Key: "k", Reason: "r"})[:20],
		"quarantine trailing":      append(fsm.EncodeQuarantine(fsm.Quarantine{VID: vid, Key: "k"}), 0),
		"unquarantine short":       fsm.EncodeUnquarantine(vid)[:10],
		"identity empty":           fsm.EncodeIdentity(""),
		"identity trailing":        append(fsm.EncodeIdentity("c"), 0),
		"quarantine bad volume id": append(append([]byte{'G', 1, 8}, make([]byte, 16)...), 0, 1, 'k', 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			r, ok := h.apply(data).(*fsm.CommitResult)
			if !ok || !errors.Is(r.Err, fsm.ErrInvalidCommand) {
				t.Fatalf("got %#v, want an invalid-command rejection", r)
			}
			if len(h.f.Quarantined()) != 0 || h.f.ClusterID() != "" {
				t.Fatal("rejected entry changed state")
			}
		})
	}
}
