package jepsen_test

import (
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen"
	"github.com/graft-cluster/graft/jepsen/checker"
)

// The quarantine nemesis: on a normal build every checker passes and at
// least one window is verified (quarantined on every node, a commit
// refused, other volumes flushed, healed, flushing resumed); on a build
// with a planted bug that lets one volume's conflicting log record stop
// every volume's flushing (build tag graft_bug_quarantine_blocks_all, the
// behaviour before quarantine) the quarantine checker reports it.
func TestQuarantineNemesis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	opts := jepsen.Options{
		Workload: "register", Nemeses: []string{"quarantine"},
		TimeLimit: 12 * time.Second, Seed: 5, Quiet: time.Second, Hold: 2 * time.Second, Processes: 6,
	}
	t.Run("normal build", func(t *testing.T) {
		out, res := run(t, build(t), opts)
		if out.Verdict != checker.Valid {
			t.Fatalf("verdict %s, want true; report in %s", out.Verdict, out.Dir)
		}
		q, ok := res.Checkers["quarantine"]
		if !ok || q.Valid != checker.Valid {
			t.Fatalf("quarantine checker: %+v", q)
		}
		if v, _ := q.Stats["verified"].(float64); v < 1 {
			t.Fatalf("no quarantine window verified: %v", q.Stats)
		}
	})
	t.Run("planted bug", func(t *testing.T) {
		out, res := run(t, build(t, "-tags", "graft_bug_quarantine_blocks_all"), opts)
		if q := res.Checkers["quarantine"]; out.Verdict != checker.Invalid || q.Valid != checker.Invalid {
			t.Fatalf("verdict %s, quarantine checker %+v with a planted bug, want false; report in %s", out.Verdict, q, out.Dir)
		}
	})
}
