package checker

import (
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/jepsen/history"
)

// SQLBankMaxSteps bounds SQLBank's search (states visited) before it
// answers unknown.
const SQLBankMaxSteps = 2_000_000

// SQLBank checks the sqlite-bank workload by reconstructing the volume's
// chain of transfers from the setup (F "setup", ok: the opening balances
// at LSN s) to the final read by a fresh replica after healing (F "final",
// ok: balances at LSN h).
//
// Why this is sound and complete: with graft_sync=remote a transaction's
// commit is accepted only on the head it ran on, so a transfer that ran on
// remote LSN b (Base) and changed rows can only ever land at b+1, carrying
// exactly the effect it computed there (its UPDATE ... WHERE balance >= a
// evaluated on the state at b: Values[3] says whether the debit changed a
// row). Only transfers write after the setup, and one that changed nothing
// makes no commit. So every LSN L in (s, h] was written by exactly one
// debiting transfer with Base L-1 that is either acknowledged at L (ok) or
// of unknown outcome (info); a failed one never lands. SQLBank walks L
// from s+1 to h, applying the ok transfer claiming L or, failing that,
// trying each info candidate (a search, usually with one candidate per
// LSN), and requires along the path: the debited account held the amount,
// every ok read (F "balances") at L saw the state at L, and the state at h
// is the final read. Also: an ok transfer's LSN is Base+1 and at most h
// (every acknowledged transfer is visible), and no two claim one LSN.
// No path => no serial order of the acknowledged and possibly-applied
// transfers explains what was read: invalid.
func SQLBank(ops []history.Op, accounts int) Result {
	var an anomalies
	stats := map[string]any{}
	var setup, final *history.Op
	type transfer struct {
		p                [2]history.Op
		from, to, amount int64
	}
	okAt := map[uint64][]transfer{}
	infoAt := map[uint64][]transfer{}
	readsAt := map[uint64][2]history.Op{}
	var nOK, nFail, nInfo, nNoop int
	for _, p := range history.Pairs(ops) {
		inv, done := p[0], p[1]
		switch inv.F {
		case "setup":
			if done.Type == history.OK {
				setup = &p[1]
			}
		case "final":
			if done.Type == history.OK {
				final = &p[1]
			}
		case "balances":
			if done.Type == history.OK {
				if _, ok := readsAt[done.LSN]; !ok {
					readsAt[done.LSN] = p
				}
			}
		case "transfer":
			switch done.Type {
			case history.OK:
				nOK++
			case history.Fail:
				nFail++
				continue
			default:
				nInfo++
			}
			if len(done.Values) != 4 {
				an.addf("transfer %s: values %v, want from, to, amount, debited", opRef(p), done.Values)
				continue
			}
			t := transfer{p: p, from: done.Values[0], to: done.Values[1], amount: done.Values[2]}
			if done.Values[3] == 0 {
				nNoop++ // changed no row: no commit
				continue
			}
			if done.Type == history.OK {
				if done.LSN != done.Base+1 {
					an.addf("transfer %s ran on lsn %d and was acknowledged at lsn %d, want %d", opRef(p), done.Base, done.LSN, done.Base+1)
				}
				okAt[done.LSN] = append(okAt[done.LSN], t)
			} else {
				infoAt[done.Base+1] = append(infoAt[done.Base+1], t)
			}
		}
	}
	stats["transfers_ok"], stats["transfers_fail"], stats["transfers_info"], stats["transfers_no_row"] = nOK, nFail, nInfo, nNoop
	if setup == nil || final == nil {
		stats["unknown_because"] = "no setup or no final read"
		return an.result("sqlite-bank", Unknown, stats)
	}
	s, h := setup.LSN, final.LSN
	stats["setup_lsn"], stats["final_lsn"] = s, h
	if len(setup.Values) != accounts || len(final.Values) != accounts {
		an.addf("setup read %v or final read %v does not have %d accounts", setup.Values, final.Values, accounts)
		return an.result("sqlite-bank", Valid, stats)
	}
	for l, ts := range okAt {
		if len(ts) > 1 {
			an.addf("lsn %d: %d acknowledged transfers claim it (%s, %s)", l, len(ts), opRef(ts[0].p), opRef(ts[1].p))
		}
		if l > h || l <= s {
			an.addf("transfer %s acknowledged at lsn %d is not in the chain from the setup (lsn %d) to the final read (lsn %d)", opRef(ts[0].p), l, s, h)
		}
	}
	if an.total > 0 {
		return an.result("sqlite-bank", Valid, stats)
	}

	// Depth-first search over the info candidates; deepest records the
	// furthest LSN any path reached and why it stopped there.
	steps, landed := 0, 0
	deepest, why := s, ""
	fail := func(l uint64, f string, args ...any) bool {
		if l >= deepest {
			deepest, why = l, fmt.Sprintf(f, args...)
		}
		return false
	}
	var walk func(l uint64, state []int64) bool
	walk = func(l uint64, state []int64) bool {
		steps++
		if steps > SQLBankMaxSteps {
			return false
		}
		if r, ok := readsAt[l]; ok && !slices.Equal(r[1].Values, state) {
			return fail(l, "read %s at lsn %d saw %v, the transfers explain %v", opRef(r), l, r[1].Values, state)
		}
		if l == h {
			if !slices.Equal(final.Values, state) {
				return fail(l, "final read at lsn %d saw %v, the transfers explain %v", h, final.Values, state)
			}
			return true
		}
		next := l + 1
		cands, unknown := okAt[next], false
		if len(cands) == 0 {
			cands, unknown = infoAt[next], true
		}
		if len(cands) == 0 {
			return fail(next, "lsn %d: no acknowledged or unknown transfer ran on lsn %d, yet the chain has it", next, l)
		}
		for _, t := range cands {
			if t.from < 1 || t.to < 1 || int(t.from) > accounts || int(t.to) > accounts {
				fail(next, "transfer %s names an account out of range", opRef(t.p))
				continue
			}
			if state[t.from-1] < t.amount {
				fail(next, "transfer %s at lsn %d debited %d from account %d, which held %d", opRef(t.p), next, t.amount, t.from, state[t.from-1])
				continue
			}
			st := slices.Clone(state)
			st[t.from-1] -= t.amount
			st[t.to-1] += t.amount
			if walk(next, st) {
				if unknown {
					landed++
				}
				return true
			}
		}
		return false
	}
	ok := walk(s, slices.Clone(setup.Values))
	stats["search_steps"] = steps
	if ok {
		stats["unknown_landed"] = landed // on the path found
	}
	switch {
	case ok:
		return an.result("sqlite-bank", Valid, stats)
	case steps > SQLBankMaxSteps:
		stats["unknown_because"] = fmt.Sprintf("search gave up after %d steps", SQLBankMaxSteps)
		return an.result("sqlite-bank", Unknown, stats)
	}
	an.addf("no order of the acknowledged and unknown transfers explains the reads: %s", why)
	return an.result("sqlite-bank", Valid, stats)
}
