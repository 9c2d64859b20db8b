package checker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

func TestResolveUnknown(t *testing.T) {
	full := entries("a", "b", "d")
	ops := chainHistory() // "d" (info) landed at 3, "e" (info) did not
	out, applied, dropped := checker.ResolveUnknown(ops, nodes(full, full, nil))
	if applied != 1 || dropped != 1 {
		t.Fatalf("applied %d, dropped %d; want 1 and 1", applied, dropped)
	}
	var sawD, sawE bool
	for _, op := range out {
		if op.F == "commit" && op.Type == history.OK && op.Hash == "d" {
			sawD = true
			if op.LSN != 3 {
				t.Fatalf("resolved d at lsn %d, want 3", op.LSN)
			}
		}
		sawE = sawE || op.Hash == "e"
	}
	if !sawD || sawE {
		t.Fatalf("resolved history: d ok %v (want true), e present %v (want false): %v", sawD, sawE, out)
	}
	r, _ := checker.Linearizable(out, 10*time.Second)
	wantVerdict(t, r, checker.Valid)

	// Nodes that disagree: nothing is resolved.
	if _, a, d := checker.ResolveUnknown(ops, nodes(full, entries("a", "b"))); a != 0 || d != 0 {
		t.Fatalf("divergent finals: applied %d, dropped %d; want 0 and 0", a, d)
	}
}

// A read that saw an unknown commit which the final chain does not hold
// (it vanished) stays unexplainable after resolution.
func TestResolveUnknown_VanishedCommitSeen(t *testing.T) {
	const v = "vol"
	ops := hist(
		commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
		commit(3, 1, v, 1, "x"), info(4, 1, "commit", v),
		read(5, 2, v), ok(6, 2, "read", v, 2, "x"),
	)
	out, _, dropped := checker.ResolveUnknown(ops, nodes(entries("a")))
	if dropped != 1 {
		t.Fatalf("dropped %d, want 1", dropped)
	}
	r, _ := checker.Linearizable(out, 10*time.Second)
	wantVerdict(t, r, checker.Invalid)
}

// Hundreds of unknown commits racing on one base, as a kill-all window
// leaves them: none is in the final chain, so all are left out.
func TestResolveUnknown_ManyConcurrentUnknowns(t *testing.T) {
	const v = "vol"
	evs := []ev{commit(0, 0, v, 0, "a"), ok(1, 0, "commit", v, 1, "")}
	tm := 2
	for p := 1; p <= 300; p++ {
		evs = append(evs, commit(tm, p, v, 1, fmt.Sprintf("u%d", p)), info(tm+1, p, "commit", v))
		tm += 2
	}
	evs = append(evs, commit(tm, 0, v, 1, "b"), ok(tm+1, 0, "commit", v, 2, ""))
	ops := hist(evs...)
	out, applied, dropped := checker.ResolveUnknown(ops, nodes(entries("a", "b")))
	if applied != 0 || dropped != 300 {
		t.Fatalf("applied %d, dropped %d; want 0 and 300", applied, dropped)
	}
	r, _ := checker.Linearizable(out, 10*time.Second)
	wantVerdict(t, r, checker.Valid)
}
