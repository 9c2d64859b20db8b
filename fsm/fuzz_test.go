package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

// FuzzApply feeds arbitrary log entries to Apply: it must never panic, and
// an entry it does not accept must leave the volume state unchanged.
func FuzzApply(f *testing.F) {
	vid := volume.MustNewID()
	f.Add(fsm.EncodeCommit(commitCmd(vid, 0, 2, pw(1, 1), pw(2, 2))))
	f.Add(fsm.EncodeCommit(commitCmd(vid, 0, 0)))
	f.Add(fsm.EncodeRegister(fsm.NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}))
	f.Add(fsm.EncodeUnregister("n1"))
	f.Add([]byte{'G', 1, 1})
	f.Add(fsm.EncodeFlushPlan(&fsm.FlushPlan{TimeUnixMs: 1, Volumes: []fsm.PlanVolume{{VID: vid, From: 1, To: 2}}}))
	f.Add(fsm.EncodeFlushDone(1))
	f.Add(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 3, PageCount: 1}, Froms: []volume.LSN{1, 2}}))
	f.Add(fsm.EncodeRecovered())
	f.Add(fsm.EncodeQuarantine(fsm.Quarantine{VID: vid, Key: "volumes/v/log/1", Reason: "undecodable"}))
	f.Add(fsm.EncodeUnquarantine(vid))
	f.Add(fsm.EncodeIdentity("0123456789abcdef"))
	f.Add(fsm.EncodeCommitBatch([]*fsm.CommitCommand{commitCmd(vid, 0, 2, pw(1, 1)), commitCmd(vid, 0, 2, pw(2, 2)), commitCmd(vid, 1, 0)}))
	f.Add([]byte{'G', 1, 11, 0, 0, 0, 0})
	f.Add([]byte{'G', 1, 11, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Add(fsm.EncodeCheckpoint(vid, 2))
	f.Add(fsm.EncodeGCPlan(&fsm.GCPlan{TimeUnixMs: 1, Volumes: []fsm.GCVolume{{VID: vid, Horizon: 2, Base: 1}}}))
	f.Add(fsm.EncodeGCDone(3))
	f.Add(fsm.EncodeTombstone(fsm.Tombstone{VID: vid, TimeUnixMs: 1}))
	f.Add(fsm.EncodeAdopt(&fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: 3, PageCount: 1}, Froms: []volume.LSN{3}, Checkpoint: 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fsm.New()
		r := m.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data})
		if cr, ok := r.(*fsm.CommitResult); ok && cr.Err != nil {
			if m.Volumes() != 0 || m.BufferBytes() != 0 {
				t.Fatalf("rejected entry changed state: %v", cr.Err)
			}
		}
	})
}

// FuzzApplyCommitBatch checks that a commit batch is decided exactly as
// the same commits in separate entries: the same result for each, the
// same state after. The input picks each commit's volume (of two), base,
// page and page count, so batches have conflicts, retries and chains.
func FuzzApplyCommitBatch(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 0, 0, 1, 2})
	f.Add([]byte{0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 2, 2, 1, 0, 1, 1})
	f.Add([]byte{1, 5, 1, 1})
	vids := [2]volume.ID{volume.MustNewID(), volume.MustNewID()}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cs []*fsm.CommitCommand
		for ; len(data) >= 4 && len(cs) < 64; data = data[4:] {
			vid := vids[data[0]&1]
			base := volume.LSN(data[1] % 4)
			pageCount := uint32(data[3]%3) + 1
			idx := volume.PageIdx(data[2])%volume.PageIdx(pageCount) + 1
			c := commitCmd(vid, base, pageCount, pw(idx, data[2]))
			if data[0]&2 != 0 {
				c.MaxBufferBytes = 3 * volume.PageSize
			}
			cs = append(cs, c)
		}
		if len(cs) == 0 {
			return
		}
		batched, single := fsm.New(), fsm.New()
		var got []*fsm.CommitResult
		switch r := batched.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: fsm.EncodeCommitBatch(cs)}).(type) {
		case *fsm.CommitBatchResult:
			got = r.Results
		case *fsm.CommitResult:
			got = []*fsm.CommitResult{r}
		default:
			t.Fatalf("apply returned %T", r)
		}
		if len(got) != len(cs) {
			t.Fatalf("%d results for %d commits", len(got), len(cs))
		}
		for i, c := range cs {
			want := single.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: fsm.EncodeCommit(c)}).(*fsm.CommitResult)
			if fmt.Sprint(want.Snapshot, want.Hash, want.Duplicate, want.Err) != fmt.Sprint(got[i].Snapshot, got[i].Hash, got[i].Duplicate, got[i].Err) {
				t.Fatalf("commit %d: batched %+v, alone %+v", i, got[i], want)
			}
		}
		for _, vid := range vids {
			if batched.Head(vid) != single.Head(vid) {
				t.Fatalf("head of %s: batched %v, alone %v", vid, batched.Head(vid), single.Head(vid))
			}
		}
		if batched.BufferBytes() != single.BufferBytes() {
			t.Fatalf("buffer: batched %d, alone %d", batched.BufferBytes(), single.BufferBytes())
		}
	})
}

// FuzzRestore feeds arbitrary snapshots to Restore: it must never panic,
// and whatever it accepts must snapshot back to the same bytes.
func FuzzRestore(f *testing.F) {
	h := &harness{f: fsm.New()}
	vid := volume.MustNewID()
	h.apply(fsm.EncodeRegister(fsm.NodeInfo{ID: "n1", RaftAddr: "r", APIAddr: "a"}))
	h.apply(fsm.EncodeCommit(commitCmd(vid, 0, 2, pw(1, 1), pw(2, 2))))
	h.apply(fsm.EncodeCommit(commitCmd(vid, 1, 2, pw(2, 3))))
	r := h.apply(fsm.EncodeFlushPlan(&fsm.FlushPlan{Volumes: []fsm.PlanVolume{{VID: vid, From: 1, To: 1}}})).(*fsm.AdminResult)
	h.apply(fsm.EncodeFlushDone(r.Round))
	h.apply(fsm.EncodeCheckpoint(vid, 1))
	h.apply(fsm.EncodeTombstone(fsm.Tombstone{VID: volume.MustNewID(), TimeUnixMs: 1}))
	h.apply(fsm.EncodeGCPlan(&fsm.GCPlan{TimeUnixMs: 1, Volumes: []fsm.GCVolume{{VID: vid, Horizon: 1, Base: 1}}}))
	h.apply(fsm.EncodeFlushPlan(&fsm.FlushPlan{Volumes: []fsm.PlanVolume{{VID: vid, From: 2, To: 2}}}))
	h.apply(fsm.EncodeIdentity("cluster-1"))
	h.apply(fsm.EncodeQuarantine(fsm.Quarantine{VID: volume.MustNewID(), Key: "volumes/x/log/1", Reason: "undecodable"}))
	snap, _ := h.f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		f.Fatal(err)
	}
	f.Add(sink.Bytes())
	f.Add([]byte("GRAFTSNP"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fsm.New()
		if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			return
		}
		s, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		var out memSink
		if err := s.Persist(&out); err != nil {
			t.Fatal(err)
		}
		// Node order in the map is not fixed; compare by restoring again.
		m2 := fsm.New()
		if err := m2.Restore(io.NopCloser(bytes.NewReader(out.Bytes()))); err != nil {
			t.Fatalf("re-restore: %v", err)
		}
		if m2.Applied() != m.Applied() || m2.BufferBytes() != m.BufferBytes() || m2.Volumes() != m.Volumes() ||
			m2.ClusterID() != m.ClusterID() || fmt.Sprint(m2.Quarantined()) != fmt.Sprint(m.Quarantined()) {
			t.Fatal("round trip changed state")
		}
	})
}
