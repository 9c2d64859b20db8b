package checker_test

import (
	"fmt"
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

func TestPageReads(t *testing.T) {
	sum := func(seed uint64, idx uint32) string { return fmt.Sprintf("s%d-%d", seed, idx) }
	const zero = "zero"
	inv := func(tm, p int, base, seed uint64, pages ...uint32) ev {
		e := commit(tm, p, "v", base, "h")
		e.op.Seed, e.op.Pages = seed, pages
		return e
	}
	readOK := func(tm, p int, lsn uint64, prs ...history.PageRead) ev {
		e := ok(tm, p, "read", "v", lsn, "")
		e.op.Via, e.op.Node, e.op.PageReads = "e1", -1, prs
		return e
	}
	pr := func(lsn uint64, idx uint32, ver uint64, s string) history.PageRead {
		return history.PageRead{LSN: lsn, Idx: idx, Ver: ver, Sum: s}
	}
	// Commits: lsn 1 writes pages 1, 2 (seed 11); lsn 2 writes page 1
	// (seed 22); lsn 3 is unknown (info).
	base := []ev{
		inv(0, 0, 0, 11, 1, 2), ok(1, 0, "commit", "v", 1, ""),
		inv(2, 0, 1, 22, 1), ok(3, 0, "commit", "v", 2, ""),
		inv(4, 1, 2, 33, 2), info(5, 1, "commit", "v"),
	}
	with := func(evs ...ev) []history.Op { return hist(append(append([]ev{}, base...), evs...)...) }

	good := with(
		read(6, 2, "v"), readOK(7, 2, 2, pr(2, 1, 2, "s22-1"), pr(2, 2, 1, "s11-2"), pr(2, 3, 0, zero), pr(1, 1, 1, "s11-1")),
		read(8, 3, "v"), readOK(9, 3, 3, pr(3, 2, 3, "unknown-commit-bytes"), pr(2, 1, 2, "s22-1")),
	)
	r := checker.PageReads(good, sum, zero)
	wantVerdict(t, r, checker.Valid)
	if r.Stats["checked"] != 6 || r.Stats["verified_against_commit"] != 4 {
		t.Fatalf("stats %v, want 6 checked, 4 verified", r.Stats)
	}

	for name, tc := range map[string]struct {
		prs     []history.PageRead
		mention []string
	}{
		// The planted edge bug: snapshot 1 served page 1's bytes of version 2.
		"old snapshot, newer bytes": {[]history.PageRead{pr(1, 1, 1, "s22-1")}, []string{"page 1 read at 1 via e1", "bytes differ", "ok 7"}},
		"version past snapshot":     {[]history.PageRead{pr(1, 1, 2, "s22-1")}, []string{"newer than the snapshot"}},
		"stale version":             {[]history.PageRead{pr(2, 1, 1, "s11-1")}, []string{"commit at 2 wrote it later"}},
		"never written not zero":    {[]history.PageRead{pr(2, 3, 0, "junk")}, []string{"not zeros"}},
		"page not in commit":        {[]history.PageRead{pr(2, 2, 2, "s22-2")}, []string{"did not write page 2"}},
		"reads disagree":            {[]history.PageRead{pr(3, 2, 3, "a"), pr(3, 2, 3, "b")}, []string{"two different contents"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantVerdict(t, checker.PageReads(with(read(6, 2, "v"), readOK(7, 2, 3, tc.prs...)), sum, zero), checker.Invalid, tc.mention...)
		})
	}
}
