package checker

import (
	"fmt"

	"github.com/graft-cluster/graft/jepsen/history"
)

// Bank checks the bank workload: every ok balance read (F "balances",
// Values the balances at LSN) has exactly accounts entries, none negative,
// summing to total, and two reads of one volume at one LSN saw the same
// balances. Transfers are commits (F "transfer", or F "commit" with
// Values from, to, amount); their outcomes are counted.
func Bank(ops []history.Op, total int64, accounts int) Result {
	var an anomalies
	type seen struct {
		p      [2]history.Op
		values []int64
	}
	atLSN := map[string]map[uint64]seen{}
	var reads, transfersOK, transfersFail, transfersInfo int
	for _, p := range history.Pairs(ops) {
		inv, done := p[0], p[1]
		switch {
		case inv.F == "balances":
			if done.Type != history.OK {
				continue
			}
			reads++
			var sum int64
			for _, v := range done.Values {
				sum += v
			}
			if len(done.Values) != accounts {
				an.addf("vid %s lsn %d: read %s saw %d accounts, want %d: %v", inv.VID, done.LSN, opRef(p), len(done.Values), accounts, done.Values)
			}
			if sum != total {
				an.addf("vid %s lsn %d: read %s balances sum to %d, want %d: %v", inv.VID, done.LSN, opRef(p), sum, total, done.Values)
			}
			for i, v := range done.Values {
				if v < 0 {
					an.addf("vid %s lsn %d: read %s account %d is negative: %d", inv.VID, done.LSN, opRef(p), i+1, v)
				}
			}
			if atLSN[inv.VID] == nil {
				atLSN[inv.VID] = map[uint64]seen{}
			}
			if prev, ok := atLSN[inv.VID][done.LSN]; !ok {
				atLSN[inv.VID][done.LSN] = seen{p, done.Values}
			} else if fmt.Sprint(prev.values) != fmt.Sprint(done.Values) {
				an.addf("vid %s lsn %d: reads disagree at one lsn: %s saw %v, %s saw %v", inv.VID, done.LSN, opRef(prev.p), prev.values, opRef(p), done.Values)
			}
		case inv.F == "transfer" || inv.F == "commit" && len(inv.Values) == 3:
			switch done.Type {
			case history.OK:
				transfersOK++
			case history.Fail:
				transfersFail++
			default:
				transfersInfo++
			}
		}
	}
	fallback := Valid
	if reads == 0 {
		fallback = Unknown
	}
	return an.result("bank", fallback, map[string]any{
		"reads":          reads,
		"transfers_ok":   transfersOK,
		"transfers_fail": transfersFail,
		"transfers_info": transfersInfo,
	})
}
