package checker

import (
	"github.com/graft-cluster/graft/jepsen/history"
)

// ReadYourWrites checks the ryw workload: after a process's commit is
// acknowledged at LSN L (F "commit", ok), its next read of that volume
// (F "read"; an at_least_lsn read carries L as its Base) must complete ok
// at an LSN of at least L, and, at L, with the commit's hash. Any ok read
// whose hash is known must match the commit acknowledged at its LSN. Reads
// that did not complete ok are counted, not flagged: at_least_lsn may time
// out.
func ReadYourWrites(ops []history.Op) Result {
	var an anomalies
	type key struct {
		process int
		vid     string
	}
	type write struct {
		p    [2]history.Op
		lsn  uint64
		hash string
	}
	pairs := history.Pairs(ops)
	acked := map[string]map[uint64][2]history.Op{} // vid -> lsn -> op
	for _, p := range pairs {
		if p[0].F == "commit" && p[1].Type == history.OK {
			if acked[p[0].VID] == nil {
				acked[p[0].VID] = map[uint64][2]history.Op{}
			}
			acked[p[0].VID][p[1].LSN] = p
		}
	}
	last := map[key]write{}
	var checked, notOK, sameNode, unpaired int
	for _, p := range pairs {
		inv, done := p[0], p[1]
		k := key{inv.Process, inv.VID}
		switch inv.F {
		case "commit":
			if done.Type == history.OK {
				last[k] = write{p, done.LSN, commitHash(p)}
			}
		case "read":
			w, ok := last[k]
			if done.Type != history.OK {
				notOK++
				continue
			}
			if done.Hash != "" {
				if a, ok := acked[inv.VID][done.LSN]; ok && commitHash(a) != "" && commitHash(a) != done.Hash {
					an.addf("vid %s lsn %d: read %s saw hash %s, but %s was acked there with %s", inv.VID, done.LSN, opRef(p), short(done.Hash), opRef(a), short(commitHash(a)))
				}
			}
			want := inv.Base
			if ok {
				want = max(want, w.lsn)
			}
			if want == 0 {
				unpaired++
				continue
			}
			checked++
			if ok && w.p[0].Node == inv.Node {
				sameNode++
			}
			switch {
			case done.LSN < want:
				if ok {
					an.addf("vid %s: read %s saw lsn %d, before its own commit %s at lsn %d", inv.VID, opRef(p), done.LSN, opRef(w.p), w.lsn)
				} else {
					an.addf("vid %s: read %s with at_least_lsn %d saw lsn %d", inv.VID, opRef(p), want, done.LSN)
				}
			case ok && done.LSN == w.lsn && done.Hash != "" && w.hash != "" && done.Hash != w.hash:
				an.addf("vid %s lsn %d: read %s saw hash %s, not its own commit %s hash %s", inv.VID, done.LSN, opRef(p), short(done.Hash), opRef(w.p), short(w.hash))
			}
		}
	}
	fallback := Valid
	if checked == 0 {
		fallback = Unknown
	}
	return an.result("ryw", fallback, map[string]any{
		"reads_checked":   checked,
		"reads_not_ok":    notOK,
		"reads_same_node": sameNode,
		"reads_unpaired":  unpaired,
	})
}
