package checker_test

import (
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

// rywRead is an at_least_lsn read of vid by p with min lsn base.
func rywRead(t, p int, vid string, base uint64) ev {
	return ev{t, history.Op{Process: p, Type: history.Invoke, F: "read", VID: vid, Base: base, Node: 1}}
}

func TestReadYourWrites(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []history.Op
		want    checker.Verdict
		mention []string
	}{
		{
			name: "reads see own writes or later",
			ops: hist(
				commit(0, 0, "v0", 0, "a"), ok(1, 0, "commit", "v0", 1, ""),
				rywRead(2, 0, "v0", 1), ok(3, 0, "read", "v0", 1, "a"),
				commit(4, 0, "v0", 1, "b"), ok(5, 0, "commit", "v0", 2, ""),
				rywRead(6, 0, "v0", 2), ok(7, 0, "read", "v0", 2, "b"),
				commit(8, 1, "v1", 0, "c"), ok(9, 1, "commit", "v1", 1, ""),
				rywRead(10, 1, "v1", 1), ok(11, 1, "read", "v1", 3, ""),
			),
			want: checker.Valid,
		},
		{
			name: "a failed or unknown read is not a miss",
			ops: hist(
				commit(0, 0, "v0", 0, "a"), ok(1, 0, "commit", "v0", 1, ""),
				rywRead(2, 0, "v0", 1), fail(3, 0, "read", "v0"),
				commit(4, 0, "v0", 1, "b"), ok(5, 0, "commit", "v0", 2, ""),
				rywRead(6, 0, "v0", 2), info(7, 0, "read", "v0"),
				commit(8, 1, "v0", 2, "c"), ok(9, 1, "commit", "v0", 3, ""),
				rywRead(10, 1, "v0", 3), ok(11, 1, "read", "v0", 3, "c"),
			),
			want: checker.Valid,
		},
		{
			name: "no checked read is unknown",
			ops:  hist(commit(0, 0, "v0", 0, "a"), info(1, 0, "commit", "v0")),
			want: checker.Unknown,
		},
		{
			name: "read misses own write",
			ops: hist(
				commit(0, 0, "v0", 0, "a"), ok(1, 0, "commit", "v0", 1, ""),
				commit(2, 0, "v0", 1, "b"), ok(3, 0, "commit", "v0", 2, ""),
				rywRead(4, 0, "v0", 2), ok(5, 0, "read", "v0", 1, "a"),
			),
			want:    checker.Invalid,
			mention: []string{"vid v0", "read op 4", "saw lsn 1", "commit op 2", "lsn 2"},
		},
		{
			name: "read without a base misses the process's write",
			ops: hist(
				commit(0, 0, "v0", 0, "a"), ok(1, 0, "commit", "v0", 1, ""),
				read(2, 0, "v0"), ok(3, 0, "read", "v0", 0, ""),
			),
			want:    checker.Invalid,
			mention: []string{"saw lsn 0", "before its own commit"},
		},
		{
			name: "read at own lsn with another hash",
			ops: hist(
				commit(0, 0, "v0", 0, "a"), ok(1, 0, "commit", "v0", 1, ""),
				rywRead(2, 0, "v0", 1), ok(3, 0, "read", "v0", 1, "x"),
			),
			want:    checker.Invalid,
			mention: []string{"lsn 1", "hash x", "op 0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantVerdict(t, checker.ReadYourWrites(tc.ops), tc.want, tc.mention...)
		})
	}
}
