package checker_test

import (
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/checker"
)

// Two processes sending byte-identical commits on one base both get the
// commit's ack (its hash is its identity): linearizable. Found by the bank
// workload under partition-leader,kill-leader, seed 1, before its pages
// carried a nonce. Different content acked at the same LSN stays invalid.
func TestLinearizable_IdenticalCommitAckedTwice(t *testing.T) {
	const v = "vol"
	same := hist(
		commit(0, 1, v, 0, "aa"),
		commit(1, 2, v, 0, "aa"),
		ok(2, 1, "commit", v, 1, "aa"),
		ok(3, 2, "commit", v, 1, "aa"),
		read(4, 3, v),
		ok(5, 3, "read", v, 1, "aa"),
	)
	r, _ := checker.Linearizable(same, 10*time.Second)
	wantVerdict(t, r, checker.Valid)

	// The duplicate comes after the original completed: still the same
	// commit, still fine while it is the head.
	later := hist(
		commit(0, 1, v, 0, "aa"),
		ok(1, 1, "commit", v, 1, "aa"),
		commit(2, 2, v, 0, "aa"),
		ok(3, 2, "commit", v, 1, "aa"),
	)
	r, _ = checker.Linearizable(later, 10*time.Second)
	wantVerdict(t, r, checker.Valid)

	differ := hist(
		commit(0, 1, v, 0, "aa"),
		commit(1, 2, v, 0, "bb"),
		ok(2, 1, "commit", v, 1, "aa"),
		ok(3, 2, "commit", v, 1, "bb"),
	)
	r, _ = checker.Linearizable(differ, 10*time.Second)
	wantVerdict(t, r, checker.Invalid)
}
