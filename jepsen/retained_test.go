package jepsen

import (
	"bytes"
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/workload"
)

// What a page held at a retained snapshot, from the history and a chain
// that starts at the horizon (4): acked commits are known, an unknown one
// at or above the horizon is settled by the chain, one below it leaves the
// pages it may have written undecided.
func TestVolumeWriters_Expect(t *testing.T) {
	const v = "vol"
	pair := func(i int, inv history.Op, typ history.Type, lsn uint64) []history.Op {
		inv.Type, inv.F, inv.VID, inv.Process, inv.Index = history.Invoke, "commit", v, i, 2*i
		done := inv
		done.Type, done.LSN, done.Index = typ, lsn, 2*i+1
		return []history.Op{inv, done}
	}
	var ops []history.Op
	ops = append(ops, pair(0, history.Op{Base: 0, Seed: 10, Pages: []uint32{1, 2}, Hash: "a"}, history.OK, 1)...)
	ops = append(ops, pair(1, history.Op{Base: 1, Seed: 11, Pages: []uint32{2}, Hash: "b"}, history.Info, 0)...) // maybe at 2
	ops = append(ops, pair(2, history.Op{Base: 2, Seed: 12, Pages: []uint32{3}, Hash: "c"}, history.OK, 3)...)   // acked at 3
	ops = append(ops, pair(3, history.Op{Base: 4, Seed: 13, Pages: []uint32{1}, Hash: "e"}, history.Info, 0)...) // in the chain at 5
	ops = append(ops, pair(4, history.Op{Base: 4, Seed: 14, Pages: []uint32{4}, Hash: "x"}, history.Info, 0)...) // not in it
	ops = append(ops, pair(5, history.Op{Base: 3, Seed: 15, Pages: []uint32{5}, Hash: "d"}, history.Fail, 0)...) // failed
	chains := map[string][]checker.Entry{v: {{LSN: 4, Hash: "d?"}, {LSN: 5, Hash: "e"}}}
	vw := writersOf(ops, chains)[v]
	for _, tc := range []struct {
		idx      uint32
		lsn      uint64
		wantLSN  uint64
		seed     uint64
		decided  bool
		zeroPage bool
	}{
		{1, 4, 1, 10, true, false},
		{1, 5, 5, 13, true, false},
		{2, 5, 0, 0, false, false}, // b may have written it at 2
		{3, 5, 3, 12, true, false},
		{4, 5, 0, 0, true, true}, // x never landed
		{5, 5, 0, 0, true, true}, // d failed
	} {
		lsn, data, ok := vw.expect(tc.idx, tc.lsn)
		if ok != tc.decided {
			t.Fatalf("page %d at %d: decided %v, want %v", tc.idx, tc.lsn, ok, tc.decided)
		}
		if !ok {
			continue
		}
		want := workload.PageData(tc.seed, tc.idx)
		if tc.zeroPage {
			want = make([]byte, len(data))
		}
		if lsn != tc.wantLSN || !bytes.Equal(data, want) {
			t.Fatalf("page %d at %d: version %d, want %d (bytes equal %v)", tc.idx, tc.lsn, lsn, tc.wantLSN, bytes.Equal(data, want))
		}
	}
}
