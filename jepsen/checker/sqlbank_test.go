package checker_test

import (
	"strings"
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

// sqlOps builds a sqlite-bank history, one operation after another.
type sqlOps struct {
	evs []ev
	p   int
}

func (s *sqlOps) add(inv, done history.Op) *sqlOps {
	s.p++
	inv.Process, done.Process = s.p, s.p
	inv.Type, inv.VID, done.VID, done.F = history.Invoke, "v", "v", inv.F
	t := len(s.evs)
	s.evs = append(s.evs, ev{t, inv}, ev{t + 1, done})
	return s
}

func (s *sqlOps) setup(lsn uint64, bal ...int64) *sqlOps {
	return s.add(history.Op{F: "setup"}, history.Op{Type: history.OK, LSN: lsn, Values: bal})
}

func (s *sqlOps) final(lsn uint64, bal ...int64) *sqlOps {
	return s.add(history.Op{F: "final"}, history.Op{Type: history.OK, LSN: lsn, Values: bal})
}

func (s *sqlOps) read(lsn uint64, bal ...int64) *sqlOps {
	return s.add(history.Op{F: "balances"}, history.Op{Type: history.OK, LSN: lsn, Values: bal})
}

// transfer records a transfer that ran on base; lsn is its ack (ok only).
func (s *sqlOps) transfer(typ history.Type, from, to, amount int64, debited bool, base, lsn uint64) *sqlOps {
	d := int64(0)
	if debited {
		d = 1
	}
	return s.add(history.Op{F: "transfer", Values: []int64{from, to, amount}},
		history.Op{Type: typ, Base: base, LSN: lsn, Values: []int64{from, to, amount, d}})
}

func (s *sqlOps) ops() []history.Op { return hist(s.evs...) }

func TestSQLBank(t *testing.T) {
	const ok, info, fail = history.OK, history.Info, history.Fail
	cases := []struct {
		name   string
		h      *sqlOps
		want   checker.Verdict
		msg    string
		landed int // -1: not checked
	}{
		{"acked and an unknown that landed", new(sqlOps).setup(1, 10, 10, 10).
			transfer(ok, 1, 2, 5, true, 1, 2).transfer(fail, 3, 1, 1, true, 1, 0).read(2, 5, 15, 10).
			transfer(info, 2, 3, 3, true, 2, 0).transfer(ok, 3, 1, 50, false, 2, 2).final(3, 5, 12, 13), checker.Valid, "", 1},
		{"an unknown that never landed", new(sqlOps).setup(1, 10, 10, 10).
			transfer(ok, 1, 2, 5, true, 1, 2).transfer(info, 2, 3, 3, true, 2, 0).final(2, 5, 15, 10), checker.Valid, "", 0},
		{"two unknowns on one base: the search picks the one that explains the final read", new(sqlOps).setup(1, 10, 10, 10).
			transfer(info, 1, 2, 5, true, 1, 0).transfer(info, 1, 3, 5, true, 1, 0).final(2, 5, 10, 15), checker.Valid, "", 1},
		{"acknowledged transfer not in the final state", new(sqlOps).setup(1, 10, 10, 10).
			transfer(ok, 1, 2, 5, true, 1, 2).transfer(ok, 2, 3, 1, true, 2, 3).final(2, 5, 15, 10), checker.Invalid, "is not in the chain", -1},
		{"only the debit committed (money vanished)", new(sqlOps).setup(1, 10, 10, 10).
			transfer(ok, 1, 2, 5, true, 1, 2).read(2, 5, 10, 10).final(2, 5, 10, 10), checker.Invalid, "the transfers explain [5 15 10]", -1},
		{"two acknowledged at one lsn (an identical commit acked twice)", new(sqlOps).setup(1, 10, 10, 10).
			transfer(ok, 1, 2, 5, true, 1, 2).transfer(ok, 1, 2, 5, true, 1, 2).final(2, 5, 15, 10), checker.Invalid, "2 acknowledged transfers claim it", -1},
		{"a debit the account could not cover", new(sqlOps).setup(1, 10, 10, 10).
			transfer(ok, 1, 2, 20, true, 1, 2).final(2, 0, 20, 10), checker.Invalid, "which held 10", -1},
		{"a failed transfer landed", new(sqlOps).setup(1, 10, 10, 10).
			transfer(fail, 1, 2, 5, true, 1, 0).final(2, 5, 15, 10), checker.Invalid, "no acknowledged or unknown transfer ran on lsn 1", -1},
		{"acknowledged on a base it did not run on", new(sqlOps).setup(1, 10, 10, 10).
			transfer(ok, 1, 2, 5, true, 1, 3).transfer(ok, 1, 3, 1, true, 1, 2).final(3, 4, 15, 11), checker.Invalid, "want 2", -1},
		{"no final read", new(sqlOps).setup(1, 10, 10, 10).transfer(ok, 1, 2, 5, true, 1, 2), checker.Unknown, "", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := checker.SQLBank(c.h.ops(), 3)
			if r.Valid != c.want {
				t.Fatalf("verdict %s, want %s: %v %v", r.Valid, c.want, r.Anomalies, r.Stats)
			}
			if c.landed >= 0 && r.Stats["unknown_landed"] != c.landed {
				t.Errorf("unknown_landed %v, want %d", r.Stats["unknown_landed"], c.landed)
			}
			if c.msg != "" && !strings.Contains(strings.Join(r.Anomalies, "\n"), c.msg) {
				t.Fatalf("anomalies %q do not say %q", r.Anomalies, c.msg)
			}
		})
	}
}
