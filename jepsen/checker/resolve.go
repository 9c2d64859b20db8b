package checker

import (
	"time"

	"github.com/graft-cluster/graft/jepsen/history"
)

// ResolveUnknown uses the volumes' final chains to settle commits whose
// outcome the client never learned (info, or never completed), as etcd's
// robustness tests patch their histories from the final state. A volume's
// final chain is every commit it holds, so:
//
//   - an unknown commit whose hash is in the chain at LSN Base+1 took
//     effect: it becomes ok at that LSN, still returning at the end of the
//     history (when it took effect is not known);
//   - one whose hash is not there never took effect and never will (the
//     chain already holds another commit at Base+1, or none): it is left
//     out, like a failed commit.
//
// This changes no verdict: an unknown commit may linearize as applied or
// not, and the chain says which; a read that saw a commit that is not in
// the final chain still has no explanation. It only spares Porcupine the
// branches that cannot happen, which are exponential in the number of
// unknown commits concurrent on one base (a kill-all window produces
// hundreds). Volumes whose final chain is missing or differs between
// nodes (Chain reports that) are left alone.
//
// finals holds each node's chains by VID (nil for a node not read). The
// result is a new history with each operation's invoke and completion
// adjacent, for Linearizable only; the other checkers keep the original.
func ResolveUnknown(ops []history.Op, finals []map[string][]Entry) (out []history.Op, applied, dropped int) {
	var end int64
	for _, op := range ops {
		end = max(end, int64(op.Time)+1)
	}
	chains := agreedChains(finals)
	for _, p := range history.Pairs(ops) {
		inv, done := p[0], p[1]
		unknown := inv.F == "commit" && done.Type != history.OK && done.Type != history.Fail
		chain, ok := chains[inv.VID]
		if !unknown || !ok {
			out = append(out, inv)
			if done.Time >= 0 {
				out = append(out, done)
			}
			continue
		}
		at := inv.Base + 1
		first := uint64(1)
		if len(chain) > 0 {
			first = chain[0].LSN
		}
		if at < first {
			// Below a retention horizon (the chain starts there): the
			// chain cannot say; Porcupine keeps both branches.
			out = append(out, inv)
			if done.Time >= 0 {
				out = append(out, done)
			}
			continue
		}
		if at-first < uint64(len(chain)) && chain[at-first].LSN == at && chain[at-first].Hash == commitHash(p) {
			done.Type, done.LSN, done.Hash, done.Error = history.OK, at, commitHash(p), ""
			done.Time = time.Duration(end)
			out = append(out, inv, done)
			applied++
			continue
		}
		dropped++
	}
	return out, applied, dropped
}

// agreedChains returns the chains of the volumes every node that was read
// holds identically, each gap-free from LSN 1 or, in a cluster that
// retains part of the history, from its horizon.
func agreedChains(finals []map[string][]Entry) map[string][]Entry {
	out := map[string][]Entry{}
	var ref map[string][]Entry
	for _, f := range finals {
		if f != nil {
			ref = f
			break
		}
	}
vids:
	for vid, chain := range ref {
		for i, e := range chain {
			if e.LSN != chain[0].LSN+uint64(i) || e.LSN == 0 {
				continue vids
			}
		}
		for _, f := range finals {
			if f == nil {
				continue
			}
			other, ok := f[vid]
			if !ok || len(other) != len(chain) {
				continue vids
			}
			for i := range chain {
				if other[i] != chain[i] {
					continue vids
				}
			}
		}
		out[vid] = chain
	}
	return out
}
