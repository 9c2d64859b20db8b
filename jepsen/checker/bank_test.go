package checker_test

import (
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

func opBalances(p int) history.Op {
	return history.Op{Process: p, Type: history.Invoke, F: "balances", VID: "bank"}
}

func balances(t, p int, lsn uint64, values ...int64) []ev {
	done := ok(t+1, p, "balances", "bank", lsn, "")
	done.op.Values = values
	return []ev{{t, opBalances(p)}, done}
}

func transfer(t, p int, base uint64, typ history.Type, from, to, amount int64) []ev {
	inv := commit(t, p, "bank", base, "t"+string(rune('0'+p)))
	inv.op.Values = []int64{from, to, amount}
	done := ev{t + 1, history.Op{Process: p, Type: typ, F: "commit", VID: "bank", LSN: base + 1}}
	return []ev{inv, done}
}

func TestBank(t *testing.T) {
	cat := func(parts ...[]ev) []history.Op {
		var all []ev
		for _, p := range parts {
			all = append(all, p...)
		}
		return hist(all...)
	}
	for _, tc := range []struct {
		name    string
		ops     []history.Op
		want    checker.Verdict
		mention []string
	}{
		{
			name: "conserved",
			ops: cat(
				balances(0, 0, 1, 50, 50, 50, 50),
				transfer(2, 1, 1, history.OK, 1, 2, 30),
				transfer(4, 2, 1, history.Fail, 2, 3, 10),
				transfer(6, 3, 2, history.Info, 3, 4, 10),
				balances(8, 0, 2, 20, 80, 50, 50),
				balances(10, 4, 2, 20, 80, 50, 50),
			),
			want: checker.Valid,
		},
		{
			name: "no reads is unknown",
			ops:  cat(transfer(0, 1, 1, history.OK, 1, 2, 3)),
			want: checker.Unknown,
		},
		{
			name:    "sum off",
			ops:     cat(balances(0, 0, 1, 50, 50, 50, 50), balances(2, 7, 3, 20, 80, 80, 50)),
			want:    checker.Invalid,
			mention: []string{"op 2", "lsn 3", "sum to 230, want 200"},
		},
		{
			name:    "missing account",
			ops:     cat(balances(0, 0, 1, 100, 50, 50)),
			want:    checker.Invalid,
			mention: []string{"3 accounts, want 4"},
		},
		{
			name:    "negative balance",
			ops:     cat(balances(0, 0, 1, 120, -20, 50, 50)),
			want:    checker.Invalid,
			mention: []string{"account 2 is negative"},
		},
		{
			name:    "two reads at one lsn disagree",
			ops:     cat(balances(0, 0, 4, 50, 50, 50, 50), balances(2, 1, 4, 40, 60, 50, 50)),
			want:    checker.Invalid,
			mention: []string{"lsn 4", "disagree", "op 0", "op 2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantVerdict(t, checker.Bank(tc.ops, 200, 4), tc.want, tc.mention...)
		})
	}
}

func TestBank_Stats(t *testing.T) {
	var evs []ev
	evs = append(evs, transfer(0, 1, 1, history.OK, 1, 2, 3)...)
	evs = append(evs, transfer(2, 2, 1, history.Info, 1, 2, 3)...)
	evs = append(evs, balances(4, 0, 2, 200)...)
	r := checker.Bank(hist(evs...), 200, 1)
	wantVerdict(t, r, checker.Valid)
	if r.Stats["transfers_ok"] != 1 || r.Stats["transfers_info"] != 1 || r.Stats["reads"] != 1 {
		t.Fatalf("stats %v", r.Stats)
	}
}
