package checker

import (
	"slices"

	"github.com/graft-cluster/graft/jepsen/history"
)

// PageSum returns the sum (as history.PageRead.Sum) of the bytes a commit
// with seed wrote to page idx; zeroSum is the sum of a page never written.
type PageSum func(seed uint64, idx uint32) string

// PageReads checks the pages reads recorded (history.Op.PageReads, the
// register workload through edges) against the commits: page idx read at
// snapshot L as version V must have V <= L; V = 0 must be zeros; the
// commit at V (when the history knows it: acknowledged, or settled by the
// final chains) must have written idx with exactly those bytes, and no
// known commit in (V, L] may have written idx; and every read of the same
// (volume, L, idx) must agree on version and bytes, every read of the same
// (volume, idx, V) on bytes. ops should have unknown commits settled
// (ResolveUnknown), so more versions can be verified.
func PageReads(ops []history.Op, sum PageSum, zeroSum string) Result {
	type commit struct {
		seed  uint64
		pages []uint32
	}
	type at struct {
		vid string
		lsn uint64
	}
	commits := map[at]commit{}
	for _, p := range history.Pairs(ops) {
		inv, done := p[0], p[1]
		if inv.F == "commit" && done.Type == history.OK && done.LSN > 0 {
			commits[at{inv.VID, done.LSN}] = commit{seed: inv.Seed, pages: inv.Pages}
		}
	}
	type snapPage struct {
		vid     string
		lsn     uint64
		idx     uint32
		ver     uint64
		sum     string
		opIndex int
	}
	type verKey struct {
		vid string
		idx uint32
		ver uint64
	}
	type lsnKey struct {
		vid string
		lsn uint64
		idx uint32
	}
	var an anomalies
	byLSN := map[lsnKey]snapPage{}
	byVer := map[verKey]snapPage{}
	checked, verified := 0, 0
	for _, p := range history.Pairs(ops) {
		done := p[1]
		if done.Type != history.OK || len(done.PageReads) == 0 {
			continue
		}
		ref := opRef(p)
		for _, r := range done.PageReads {
			checked++
			sp := snapPage{vid: done.VID, lsn: r.LSN, idx: r.Idx, ver: r.Ver, sum: r.Sum, opIndex: done.Index}
			if r.Ver > r.LSN {
				an.addf("vid %s page %d read at %d via %s: version %d is newer than the snapshot (%s)", done.VID, r.Idx, r.LSN, done.Via, r.Ver, ref)
				continue
			}
			if r.Ver == 0 {
				if r.Sum != zeroSum {
					an.addf("vid %s page %d read at %d via %s: never written, but not zeros (%s)", done.VID, r.Idx, r.LSN, done.Via, ref)
				}
			} else if c, ok := commits[at{done.VID, r.Ver}]; ok {
				switch {
				case !slices.Contains(c.pages, r.Idx):
					an.addf("vid %s page %d read at %d via %s: version %d, but the commit at %d did not write page %d (%s)", done.VID, r.Idx, r.LSN, done.Via, r.Ver, r.Ver, r.Idx, ref)
				case sum(c.seed, r.Idx) != r.Sum:
					an.addf("vid %s page %d read at %d via %s: version %d, bytes differ from what the commit at %d wrote (%s)", done.VID, r.Idx, r.LSN, done.Via, r.Ver, r.Ver, ref)
				default:
					verified++
				}
			}
			for l := r.Ver + 1; l <= r.LSN; l++ {
				if c, ok := commits[at{done.VID, l}]; ok && slices.Contains(c.pages, r.Idx) {
					an.addf("vid %s page %d read at %d via %s: version %d, but the commit at %d wrote it later (%s)", done.VID, r.Idx, r.LSN, done.Via, r.Ver, l, ref)
					break
				}
			}
			lk := lsnKey{done.VID, r.LSN, r.Idx}
			if o, ok := byLSN[lk]; ok && (o.ver != r.Ver || o.sum != r.Sum) {
				an.addf("vid %s page %d at %d: read as version %d (op %d) and as version %d with other bytes (%s)", done.VID, r.Idx, r.LSN, o.ver, o.opIndex, r.Ver, ref)
			} else if !ok {
				byLSN[lk] = sp
			}
			vk := verKey{done.VID, r.Idx, r.Ver}
			if o, ok := byVer[vk]; ok && o.sum != r.Sum {
				an.addf("vid %s page %d version %d: two different contents read (op %d and %s)", done.VID, r.Idx, r.Ver, o.opIndex, ref)
			} else if !ok {
				byVer[vk] = sp
			}
		}
	}
	return an.result("page-reads", Valid, map[string]any{"checked": checked, "verified_against_commit": verified})
}
