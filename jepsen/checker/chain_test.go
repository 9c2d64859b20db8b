package checker_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

// chainHistory: a@1 and b@2 acked, c on base 1 failed, d on base 2 unknown
// (it landed at 3 in full), e on base 3 unknown.
func chainHistory() []history.Op {
	const v = "vol"
	return hist(
		commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
		commit(3, 0, v, 1, "b"), commit(4, 1, v, 1, "c"),
		ok(5, 0, "commit", v, 2, ""), fail(6, 1, "commit", v),
		commit(7, 2, v, 2, "d"), info(8, 2, "commit", v),
		commit(9, 3, v, 3, "e"), info(10, 3, "commit", v),
	)
}

func entries(hashes ...string) []checker.Entry {
	out := make([]checker.Entry, len(hashes))
	for i, h := range hashes {
		out[i] = checker.Entry{LSN: uint64(i + 1), Hash: h}
	}
	return out
}

func nodes(chains ...[]checker.Entry) []map[string][]checker.Entry {
	out := make([]map[string][]checker.Entry, len(chains))
	for i, c := range chains {
		if c != nil {
			out[i] = map[string][]checker.Entry{"vol": c}
		}
	}
	return out
}

func TestChain(t *testing.T) {
	full := entries("a", "b", "d")
	for _, tc := range []struct {
		name    string
		ops     []history.Op
		finals  []map[string][]checker.Entry
		want    checker.Verdict
		mention []string
	}{
		{
			name:   "info landed",
			ops:    chainHistory(),
			finals: nodes(full, full, full),
			want:   checker.Valid,
		},
		{
			name:   "info did not land",
			ops:    chainHistory(),
			finals: nodes(entries("a", "b"), entries("a", "b"), entries("a", "b")),
			want:   checker.Valid,
		},
		{
			name:   "a node could not be read",
			ops:    chainHistory(),
			finals: []map[string][]checker.Entry{{"vol": full}, nil, {"vol": full}},
			want:   checker.Unknown,
		},
		{
			name:    "lost ack",
			ops:     chainHistory(),
			finals:  nodes(entries("a"), entries("a"), entries("a")),
			want:    checker.Invalid,
			mention: []string{"vid vol lsn 2", "acked commit op 2", "lost", "node 0 has no lsn 2"},
		},
		{
			name:    "lost ack on one replica",
			ops:     chainHistory(),
			finals:  nodes(full, full, entries("a", "x", "d")),
			want:    checker.Invalid,
			mention: []string{"lsn 2", "acked commit op 2", "node 2 has x"},
		},
		{
			name: "two commits acked at one lsn",
			ops: hist(
				commit(1, 0, "vol", 0, "a"), commit(2, 1, "vol", 0, "b"),
				ok(3, 0, "commit", "vol", 1, ""), ok(4, 1, "commit", "vol", 1, ""),
			),
			finals:  nodes(entries("a"), entries("a"), entries("a")),
			want:    checker.Invalid,
			mention: []string{"vid vol lsn 1", "two commits acked", "op 0", "op 1"},
		},
		{
			name: "failed commit is visible",
			ops:  chainHistory(),
			finals: nodes(
				[]checker.Entry{{1, "a"}, {2, "c"}}, []checker.Entry{{1, "a"}, {2, "c"}}, []checker.Entry{{1, "a"}, {2, "c"}},
			),
			want:    checker.Invalid,
			mention: []string{"failed commit op 3", "hash c", "node 0 lsn 2"},
		},
		{
			name:    "gap",
			ops:     chainHistory(),
			finals:  nodes(full, full, []checker.Entry{{1, "a"}, {2, "b"}, {4, "e"}}),
			want:    checker.Invalid,
			mention: []string{"node 2", "gap", "lsn 3..3"},
		},
		{
			name:    "two hashes at one lsn",
			ops:     chainHistory(),
			finals:  nodes(full, full, []checker.Entry{{1, "a"}, {2, "b"}, {2, "c"}, {3, "d"}}),
			want:    checker.Invalid,
			mention: []string{"lsn 2", "node 2 has two hashes"},
		},
		{
			name:    "divergent replica",
			ops:     chainHistory(),
			finals:  nodes(full, full, entries("a", "b", "e")),
			want:    checker.Invalid,
			mention: []string{"lsn 3", "diverge", "node 2 has e"},
		},
		{
			name:    "replica behind",
			ops:     chainHistory(),
			finals:  nodes(full, entries("a", "b"), full),
			want:    checker.Invalid,
			mention: []string{"differ in length", "node 1 head 2"},
		},
		{
			name:    "hash nobody sent",
			ops:     chainHistory(),
			finals:  nodes(entries("a", "b", "zz"), entries("a", "b", "zz"), entries("a", "b", "zz")),
			want:    checker.Invalid,
			mention: []string{"lsn 3", "zz", "never sent"},
		},
		{
			name:    "commit at the wrong lsn",
			ops:     chainHistory(),
			finals:  nodes(entries("a", "b", "e"), entries("a", "b", "e"), entries("a", "b", "e")),
			want:    checker.Invalid,
			mention: []string{"lsn 3", "sent on base 3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantVerdict(t, checker.Chain(tc.ops, tc.finals), tc.want, tc.mention...)
		})
	}
}

func TestChain_Stats(t *testing.T) {
	full := entries("a", "b", "d")
	r := checker.Chain(chainHistory(), nodes(full, full, full))
	for k, want := range map[string]int{"acked": 2, "failed": 1, "unknown_landed": 1, "unknown_not_landed": 1, "nodes_read": 3} {
		if r.Stats[k] != want {
			t.Errorf("%s = %v, want %d", k, r.Stats[k], want)
		}
	}
}

// A node not read because the read could not be made leaves the verdict
// unknown; a node whose read answered that the data is gone is an anomaly.
func TestChain_Unread(t *testing.T) {
	full := entries("a", "b", "d")
	finals := []map[string][]checker.Entry{{"vol": full}, nil, {"vol": full}}
	unreadable := fmt.Errorf("%w: deadline_exceeded", checker.ErrUnreadable)
	gone := errors.New("pull commits of vol since 0: data_loss: flushed data missing from the object store")
	wantVerdict(t, checker.Chain(chainHistory(), finals, checker.Unread{Node: 1, Err: unreadable}), checker.Unknown)
	wantVerdict(t, checker.Chain(chainHistory(), finals, checker.Unread{Node: 1, Err: gone}), checker.Invalid,
		"node 1", "data gone", "flushed data missing")
	// Every node answering that data is gone: nothing read, still invalid.
	none := make([]map[string][]checker.Entry, 3)
	r := checker.Chain(chainHistory(), none, checker.Unread{Node: 0, Err: gone}, checker.Unread{Node: 1, Err: gone}, checker.Unread{Node: 2, Err: gone})
	wantVerdict(t, r, checker.Invalid, "node 2", "data gone")
}
