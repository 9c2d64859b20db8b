package checker

import (
	"github.com/graft-cluster/graft/jepsen/history"
)

// PageCheck verifies the bytes a commit wrote: it reads pages of volume
// vid at lsn and compares them with what the commit's seed generates,
// returning an error describing the first mismatch.
type PageCheck func(vid string, lsn uint64, seed uint64, pages []uint32) error

// Pages calls check for every acknowledged commit (F "commit", ok) that
// wrote pages, and reports each error as an anomaly.
func Pages(ops []history.Op, check PageCheck) Result {
	var an anomalies
	checked := 0
	for _, p := range history.Pairs(ops) {
		inv, done := p[0], p[1]
		if inv.F != "commit" || done.Type != history.OK || len(inv.Pages) == 0 {
			continue
		}
		checked++
		if err := check(inv.VID, done.LSN, inv.Seed, inv.Pages); err != nil {
			an.addf("vid %s lsn %d: pages %v of acked commit %s (seed %d): %s", inv.VID, done.LSN, inv.Pages, opRef(p), inv.Seed, err.Error())
		}
	}
	return an.result("pages", Valid, map[string]any{"checked": checked})
}
