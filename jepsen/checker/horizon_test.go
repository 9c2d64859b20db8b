package checker_test

import (
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

// from returns entries at lsn first, first+1, ... with the given hashes.
func from(first uint64, hashes ...string) []checker.Entry {
	out := make([]checker.Entry, len(hashes))
	for i, h := range hashes {
		out[i] = checker.Entry{LSN: first + uint64(i), Hash: h}
	}
	return out
}

// With a horizon at 2, chains that start there hold every acked commit
// they can; the acked a@1 is below it and only counted.
func TestChainFrom(t *testing.T) {
	h := map[string]uint64{"vol": 2}
	for _, tc := range []struct {
		name     string
		finals   []map[string][]checker.Entry
		horizons map[string]uint64
		want     checker.Verdict
		mention  []string
	}{
		{"from the horizon", nodes(from(2, "b", "d"), from(2, "b", "d"), from(2, "b", "d")), h, checker.Valid, nil},
		{"one node still holds lsn 1", nodes(entries("a", "b", "d"), from(2, "b", "d"), from(2, "b", "d")), h, checker.Valid, nil},
		{"no horizon: a gap", nodes(from(2, "b", "d"), from(2, "b", "d"), from(2, "b", "d")), nil, checker.Invalid, []string{"gap", "lsn 1..1"}},
		{"starts above the horizon", nodes(from(3, "d"), from(2, "b", "d"), from(2, "b", "d")), h, checker.Invalid, []string{"node 0", "gap", "lsn 2..2"}},
		{"acked at the horizon lost", nodes(from(2, "x", "d"), from(2, "x", "d"), from(2, "x", "d")), h, checker.Invalid, []string{"lsn 2", "lost"}},
		{"replicas diverge above the horizon", nodes(from(2, "b", "d"), from(2, "b", "q"), from(2, "b", "d")), h, checker.Invalid, []string{"diverge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checker.ChainFrom(chainHistory(), tc.finals, tc.horizons)
			wantVerdict(t, r, tc.want, tc.mention...)
			if tc.want == checker.Valid && r.Stats["acked_below_horizon"] != 1 {
				t.Fatalf("acked_below_horizon = %v, want 1", r.Stats["acked_below_horizon"])
			}
		})
	}
}

// A chain that starts at a horizon settles the unknown commits at or above
// it and leaves the ones below it unknown.
func TestResolveUnknown_FromHorizon(t *testing.T) {
	const v = "vol"
	ops := hist(
		commit(1, 0, v, 0, "a"), info(2, 0, "commit", v),
		commit(3, 1, v, 1, "b"), info(4, 1, "commit", v),
		commit(5, 2, v, 2, "c"), info(6, 2, "commit", v),
	)
	chain := from(2, "b", "x")
	out, applied, dropped := checker.ResolveUnknown(ops, nodes(chain, chain))
	if applied != 1 || dropped != 1 {
		t.Fatalf("applied %d, dropped %d; want 1 (b) and 1 (c)", applied, dropped)
	}
	var aUnknown, bOK bool
	for _, op := range out {
		if op.Hash == "" && op.F == "commit" && op.Type == history.Info && op.Process == 0 {
			aUnknown = true
		}
		if op.Hash == "b" && op.Type == history.OK && op.LSN == 2 {
			bOK = true
		}
	}
	if !aUnknown || !bOK {
		t.Fatalf("a left unknown %v (want true), b ok at 2 %v (want true): %v", aUnknown, bOK, out)
	}
}

// A bucket whose log continues a checkpoint: it starts one past it, and
// entries below the chain's first lsn (the horizon) are not compared.
func TestFinalBucketFrom(t *testing.T) {
	chains := map[string][]checker.Entry{"v": from(3, "c", "d")}
	for _, tc := range []struct {
		name    string
		bucket  []checker.Entry
		start   uint64
		want    checker.Verdict
		mention []string
	}{
		{"continues checkpoint 1", from(2, "b", "c", "d"), 2, checker.Valid, nil},
		{"all folded into checkpoint 4", nil, 5, checker.Valid, nil},
		{"not from the checkpoint", from(3, "c", "d"), 2, checker.Invalid, []string{"lsn 3, want 2"}},
		{"hash differs above the horizon", from(2, "b", "q", "d"), 2, checker.Invalid, []string{"vid v lsn 3", "hash q"}},
		{"short after the final flush", from(2, "b", "c"), 2, checker.Invalid, []string{"lsn 2..3", "head is 4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checker.FinalBucketFrom(chains, map[string][]checker.Entry{"v": tc.bucket}, map[string]uint64{"v": tc.start}, nil, nil)
			wantVerdict(t, r, tc.want, tc.mention...)
		})
	}
}
