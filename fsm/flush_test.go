package fsm_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

func (h *harness) admin(data []byte) *fsm.AdminResult {
	h.t.Helper()
	r, ok := h.apply(data).(*fsm.AdminResult)
	if !ok {
		h.t.Fatalf("apply returned %T", r)
	}
	return r
}

func plan(vols ...fsm.PlanVolume) []byte {
	return fsm.EncodeFlushPlan(&fsm.FlushPlan{TimeUnixMs: 1700000000000, Volumes: vols})
}

func TestFSM_FlushRound(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	h.commit(commitCmd(vid, 0, 3, pw(1, 1), pw(2, 2)))
	h.commit(commitCmd(vid, 1, 3, pw(1, 3)))
	h.commit(commitCmd(vid, 2, 3, pw(3, 4)))

	cands := h.f.FlushCandidates()
	if len(cands) != 1 || cands[0].Flushed != 0 || cands[0].Head != 3 || cands[0].Bytes != 4*volume.PageSize {
		t.Fatalf("candidates %+v", cands)
	}
	seg := [16]byte{0x81, 1}
	r := h.admin(plan(fsm.PlanVolume{VID: vid, From: 1, To: 2, Segment: seg}))
	if r.Err != nil || r.Round != h.index {
		t.Fatalf("plan: %+v", r)
	}
	if p := h.f.Plan(); p == nil || p.Round != r.Round || p.Volumes[0].To != 2 || p.Volumes[0].Segment != seg {
		t.Fatalf("open plan %+v", p)
	}
	// Only one round at a time; commits go on while it is open.
	if r2 := h.admin(plan(fsm.PlanVolume{VID: vid, From: 1, To: 3})); !errors.Is(r2.Err, fsm.ErrFlushRejected) {
		t.Fatalf("second plan: %+v", r2)
	}
	h.commit(commitCmd(vid, 3, 3, pw(2, 5)))
	bc, err := h.f.Buffered(vid, 1, 2)
	if err != nil || len(bc) != 2 || bc[0].LSN != 1 || len(bc[0].Pages) != 2 || bc[1].Graft.Slice()[0] != 1 {
		t.Fatalf("buffered: %+v %v", bc, err)
	}
	if d := h.admin(fsm.EncodeFlushDone(r.Round + 1)); !errors.Is(d.Err, fsm.ErrFlushRejected) {
		t.Fatalf("done for another round: %+v", d)
	}
	if d := h.admin(fsm.EncodeFlushDone(r.Round)); d.Err != nil {
		t.Fatalf("done: %+v", d)
	}
	if h.f.Plan() != nil {
		t.Fatal("round still open after done")
	}
	hist := h.f.History(vid)
	if hist.Flushed != 2 || len(hist.Froms) != 1 || hist.Froms[0] != 1 {
		t.Fatalf("history %+v", hist)
	}
	if i, ok := hist.Locate(2); !ok || i != 0 {
		t.Fatalf("locate 2: %d %v", i, ok)
	}
	if _, ok := hist.Locate(3); ok {
		t.Fatal("lsn 3 located in history")
	}
	if got := h.f.BufferBytes(); got != 2*volume.PageSize {
		t.Fatalf("buffer bytes after trim %d, want 2 pages", got)
	}
	if _, err := h.f.Buffered(vid, 2, 3); !errors.Is(err, fsm.ErrNotBuffered) {
		t.Fatalf("trimmed range still buffered: %v", err)
	}

	// Reads: page 3 and 2 are buffered; page 1's version (lsn 2) is flushed.
	pr, err := h.f.ReadPages(vid, 0, []volume.PageIdx{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Missing) != 1 || pr.Missing[0] != 0 || pr.History.Flushed != 2 {
		t.Fatalf("missing %v history %+v", pr.Missing, pr.History)
	}
	if pr.Pages[1].LSN != 4 || pr.Pages[2].LSN != 3 {
		t.Fatalf("buffered versions %+v", pr.Pages)
	}
	if _, err := h.f.ReadPages(vid, 2, []volume.PageIdx{1}); !errors.Is(err, fsm.ErrNotBuffered) {
		t.Fatalf("read at a flushed lsn: %v", err)
	}
	// A retry of a flushed commit is a rejection flagged for the caller to
	// check against the log record.
	c := h.commit(commitCmd(vid, 0, 3, pw(1, 1), pw(2, 2)))
	var se *fsm.StaleError
	if !errors.As(c.Err, &se) || !se.Flushed || se.Head.LSN != 4 {
		t.Fatalf("retry of flushed commit: %+v", c)
	}
	// A range that does not start at the watermark is refused.
	if r := h.admin(plan(fsm.PlanVolume{VID: vid, From: 2, To: 4})); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("plan from 2: %+v", r)
	}
	if r := h.admin(plan(fsm.PlanVolume{VID: vid, From: 3, To: 5})); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("plan past the head: %+v", r)
	}
	// Flush the rest: the buffer empties and reads at the head all go to
	// the history.
	r = h.admin(plan(fsm.PlanVolume{VID: vid, From: 3, To: 4, Segment: seg}))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if d := h.admin(fsm.EncodeFlushDone(r.Round)); d.Err != nil {
		t.Fatal(d.Err)
	}
	if h.f.BufferBytes() != 0 || len(h.f.FlushCandidates()) != 0 {
		t.Fatalf("buffer %d candidates %v", h.f.BufferBytes(), h.f.FlushCandidates())
	}
	hist = h.f.History(vid)
	if i, ok := hist.Locate(4); !ok || i != 1 {
		t.Fatalf("locate 4: %d %v", i, ok)
	}
	if from, to := hist.Range(0); from != 1 || to != 2 {
		t.Fatalf("range 0 = [%d, %d]", from, to)
	}
	pr, err = h.f.ReadPages(vid, 4, []volume.PageIdx{1, 9})
	if err != nil || len(pr.Missing) != 1 || pr.Snapshot.LSN != 4 {
		t.Fatalf("read at head after full flush: %+v %v", pr, err)
	}
	// The chain goes on after the buffer was emptied.
	if c := h.commit(commitCmd(vid, 4, 3, pw(1, 6))); c.Err != nil || c.Snapshot.LSN != 5 {
		t.Fatalf("commit after flush: %+v", c)
	}
}

func TestFSM_FlushSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	a, b := volume.MustNewID(), volume.MustNewID()
	h.commit(commitCmd(a, 0, 2, pw(1, 1)))
	h.commit(commitCmd(a, 1, 2, pw(2, 2)))
	h.commit(commitCmd(b, 0, 1, pw(1, 3)))
	r := h.admin(plan(fsm.PlanVolume{VID: a, From: 1, To: 1, Segment: [16]byte{0x81, 9}}))
	h.admin(fsm.EncodeFlushDone(r.Round))
	h.admin(fsm.EncodeRecovered())
	open := h.admin(plan(fsm.PlanVolume{VID: a, From: 2, To: 2}))
	if open.Err != nil {
		t.Fatal(open.Err)
	}
	data := snapshotBytes(t, h.f)
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("restore then snapshot is not the same bytes")
	}
	if !g.Recovered() {
		t.Fatal("recovered flag lost")
	}
	if p := g.Plan(); p == nil || p.Round != open.Round || p.Volumes[0].VID != a || p.Volumes[0].From != 2 {
		t.Fatalf("restored plan %+v", p)
	}
	if hist := g.History(a); hist.Flushed != 1 || len(hist.Froms) != 1 {
		t.Fatalf("restored history %+v", hist)
	}
	// The restored state finishes the round like the original would.
	gh := &harness{t: t, f: g, index: g.Applied()}
	if d := gh.admin(fsm.EncodeFlushDone(open.Round)); d.Err != nil {
		t.Fatal(d.Err)
	}
	if g.BufferBytes() != volume.PageSize {
		t.Fatalf("buffer %d, want b's one page", g.BufferBytes())
	}
}

func TestFSM_Adopt(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	if h.f.Recovered() {
		t.Fatal("new FSM claims recovery is done")
	}
	r := h.admin(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 7, PageCount: 4}, Froms: []volume.LSN{1, 5}}))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := h.admin(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 9}, Froms: []volume.LSN{1}})); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("second adopt of one volume: %+v", r)
	}
	h.admin(fsm.EncodeRecovered())
	if !h.f.Recovered() {
		t.Fatal("not recovered")
	}
	other := volume.MustNewID()
	if r := h.admin(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: other, LSN: 1}, Froms: []volume.LSN{1}})); !errors.Is(r.Err, fsm.ErrFlushRejected) {
		t.Fatalf("adopt after recovery: %+v", r)
	}
	if head := h.f.Head(vid); head.LSN != 7 || head.PageCount != 4 {
		t.Fatalf("head %v", head)
	}
	hist := h.f.History(vid)
	if from, to := hist.Range(1); from != 5 || to != 7 {
		t.Fatalf("record 1 = [%d, %d]", from, to)
	}
	if c := h.commit(commitCmd(vid, 7, 4, pw(2, 1))); c.Err != nil || c.Snapshot.LSN != 8 {
		t.Fatalf("commit on adopted volume: %+v", c)
	}
	if c := h.commit(commitCmd(vid, 3, 4, pw(2, 1))); c.Err == nil {
		t.Fatal("stale commit on adopted volume accepted")
	}
}

func TestFSM_FlushCommandsInvalid(t *testing.T) {
	vid := volume.MustNewID()
	for name, data := range map[string][]byte{
		"plan truncated":    plan(fsm.PlanVolume{VID: vid, From: 1, To: 1})[:20],
		"plan empty range":  plan(fsm.PlanVolume{VID: vid, From: 2, To: 1}),
		"plan from zero":    plan(fsm.PlanVolume{VID: vid, From: 0, To: 1}),
		"done round zero":   fsm.EncodeFlushDone(0),
		"adopt no records":  fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 1}}),
		"adopt unsorted":    fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 9}, Froms: []volume.LSN{5, 2}}),
		"adopt past head":   fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 3}, Froms: []volume.LSN{1, 4}}),
		"recovered trailer": append(fsm.EncodeRecovered(), 0),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.commit(commitCmd(vid, 0, 1, pw(1, 1)))
			r, ok := h.apply(data).(*fsm.CommitResult)
			if !ok || !errors.Is(r.Err, fsm.ErrInvalidCommand) {
				t.Fatalf("got %#v, want an invalid-command rejection", r)
			}
			if h.f.Plan() != nil || h.f.Recovered() || h.f.History(vid).Flushed != 0 {
				t.Fatal("rejected entry changed state")
			}
		})
	}
}
