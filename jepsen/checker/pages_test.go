package checker_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
)

func TestPages(t *testing.T) {
	inv := func(tm, p int, base, seed uint64) ev {
		e := commit(tm, p, "v", base, "h")
		e.op.Seed, e.op.Pages = seed, []uint32{1, 2}
		return e
	}
	ops := hist(
		inv(0, 0, 0, 11), ok(1, 0, "commit", "v", 1, ""),
		inv(2, 0, 1, 22), ok(3, 0, "commit", "v", 2, ""),
		inv(4, 1, 1, 33), fail(5, 1, "commit", "v"),
		inv(6, 2, 2, 44), info(7, 2, "commit", "v"),
	)
	var calls []uint64
	good := func(vid string, lsn, seed uint64, pages []uint32) error {
		calls = append(calls, seed)
		return nil
	}
	wantVerdict(t, checker.Pages(ops, good), checker.Valid)
	if len(calls) != 2 || calls[0] != 11 || calls[1] != 22 {
		t.Fatalf("check called for seeds %v, want the acked [11 22]", calls)
	}
	bad := func(vid string, lsn, seed uint64, pages []uint32) error {
		if lsn == 2 {
			return errors.New("page 2 differs at byte 7")
		}
		return nil
	}
	wantVerdict(t, checker.Pages(ops, bad), checker.Invalid, "vid v lsn 2", "op 2", "byte 7")

	// A read that could not be made says nothing: unknown, not invalid,
	// unless another commit's read found a real difference.
	unreadable := func(vid string, lsn, seed uint64, pages []uint32) error {
		if lsn == 2 {
			return fmt.Errorf("%w: unavailable: no leader", checker.ErrUnreadable)
		}
		return nil
	}
	wantVerdict(t, checker.Pages(ops, unreadable), checker.Unknown)
	both := func(vid string, lsn, seed uint64, pages []uint32) error {
		if lsn == 2 {
			return fmt.Errorf("%w: deadline exceeded", checker.ErrUnreadable)
		}
		return errors.New("page 1 missing")
	}
	wantVerdict(t, checker.Pages(ops, both), checker.Invalid, "lsn 1", "page 1 missing")
}
