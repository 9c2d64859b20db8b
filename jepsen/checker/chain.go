package checker

import (
	"fmt"
	"sort"
	"strings"

	"github.com/graft-cluster/graft/jepsen/history"
)

// Entry is one commit in a volume's chain: its LSN and hash (hex).
type Entry struct {
	LSN  uint64 `json:"lsn"`
	Hash string `json:"hash"`
}

// chainIndex is one node's chains in lookup form.
type chainIndex struct {
	byLSN  map[string]map[uint64]string // vid -> lsn -> hash (the first seen)
	byHash map[string]map[string]uint64 // vid -> hash -> lsn
	head   map[string]uint64            // vid -> highest lsn
}

// Chain checks the final chains read from every node after the faults
// healed: finals[i] maps each volume to node i's chain, and a nil map
// means node i was not read. Why is in unread: a node not read for a
// reason that wraps ErrUnreadable (a timeout, unavailable) makes the
// verdict at best Unknown; any other reason is the cluster's answer that
// the data is gone (data_loss, not_found: a range it says is flushed is
// missing from the object store) or broken, and is an anomaly.
// It checks that each chain is gap-free from 1 to its head with one hash
// per LSN; that the replicas are identical; that every acknowledged commit
// is at its LSN with its hash on every node; that no failed commit appears
// anywhere; and that every hash in a chain is a commit some client sent on
// the matching base with an ok or unknown outcome.
func Chain(ops []history.Op, finals []map[string][]Entry, unread ...Unread) Result {
	return chain(ops, finals, nil, true, unread)
}

// ChainReplicas is Chain without a history: each chain gap-free with one
// hash per LSN, the replicas identical, unread nodes as in Chain. For a
// workload whose clients do not know their commits' hashes (sqlite-bank:
// the VFS makes the commit from SQLite's pages), so nothing can be
// attributed to a client; its own checker covers the acknowledgements.
func ChainReplicas(finals []map[string][]Entry, unread ...Unread) Result {
	return chain(nil, finals, nil, false, unread)
}

// ChainFrom is Chain for a cluster that retains only part of each
// volume's history (--retain-lsns, --retain-history): horizons[vid] is the
// volume's oldest readable LSN, as the nodes named it (out_of_range) when
// their chains were read. Each node's chain must be gap-free from the
// horizon (entries below it may be present or not); an acked commit below
// the horizon cannot be looked up and is counted, not checked (the final
// page reads check that reads of it answer out_of_range naming a horizon
// above it); replicas are compared from the horizon. A nil or empty map is
// Chain.
func ChainFrom(ops []history.Op, finals []map[string][]Entry, horizons map[string]uint64, unread ...Unread) Result {
	return chain(ops, finals, horizons, true, unread)
}

func chain(ops []history.Op, finals []map[string][]Entry, horizons map[string]uint64, attribute bool, unread []Unread) Result {
	var an anomalies
	for _, u := range unread {
		if u.Gone() {
			an.addf("node %d: the final read shows data gone: %v", u.Node, u.Err)
		}
	}
	idx := make([]*chainIndex, len(finals))
	var read []int
	for i, f := range finals {
		if f == nil {
			continue
		}
		read = append(read, i)
		idx[i] = indexChains(&an, i, f, horizons)
	}
	vids := map[string]bool{}
	for _, i := range read {
		for vid := range finals[i] {
			vids[vid] = true
		}
	}
	checkReplicas(&an, idx, read, sortedKeys(vids), horizons)

	// Every commit any client sent, by volume and hash.
	pairs := history.Pairs(ops)
	type sentOp struct {
		p    [2]history.Op
		base uint64
	}
	sent := map[string]map[string][]sentOp{}
	ackedAt := map[string]map[uint64][2]history.Op{} // vid -> lsn -> first op acked there
	var acked, failed, landed, notLanded, belowHorizon int
	for _, p := range pairs {
		inv, done := p[0], p[1]
		if inv.F != "commit" {
			continue
		}
		h := commitHash(p)
		if sent[inv.VID] == nil {
			sent[inv.VID] = map[string][]sentOp{}
			ackedAt[inv.VID] = map[uint64][2]history.Op{}
		}
		if h != "" {
			sent[inv.VID][h] = append(sent[inv.VID][h], sentOp{p, inv.Base})
		}
		switch done.Type {
		case history.OK:
			acked++
			lsn := done.LSN
			if prev, ok := ackedAt[inv.VID][lsn]; ok && commitHash(prev) != h {
				an.addf("vid %s lsn %d: two commits acked: %s hash %s and %s hash %s", inv.VID, lsn, opRef(prev), short(commitHash(prev)), opRef(p), short(h))
			} else if !ok {
				ackedAt[inv.VID][lsn] = p
			}
			if lsn < horizons[inv.VID] {
				belowHorizon++
				continue
			}
			var lost []string
			for _, i := range read {
				got, ok := idx[i].byLSN[inv.VID][lsn]
				switch {
				case !ok:
					lost = append(lost, fmt.Sprintf("node %d has no lsn %d (head %d)", i, lsn, idx[i].head[inv.VID]))
				case h != "" && got != h:
					lost = append(lost, fmt.Sprintf("node %d has %s", i, short(got)))
				}
			}
			if len(lost) > 0 {
				an.addf("vid %s lsn %d: acked commit %s hash %s lost: %s", inv.VID, lsn, opRef(p), short(h), strings.Join(lost, ", "))
			}
		case history.Fail:
			failed++
			if h == "" {
				continue
			}
			var seen []string
			for _, i := range read {
				if lsn, ok := idx[i].byHash[inv.VID][h]; ok {
					seen = append(seen, fmt.Sprintf("node %d lsn %d", i, lsn))
				}
			}
			if len(seen) > 0 {
				an.addf("vid %s: failed commit %s on base %d hash %s is visible: %s", inv.VID, opRef(p), inv.Base, short(h), strings.Join(seen, ", "))
			}
		default:
			if h == "" {
				continue
			}
			in := false
			for _, i := range read {
				if lsn, ok := idx[i].byHash[inv.VID][h]; ok && lsn == inv.Base+1 {
					in = true
				}
			}
			if in {
				landed++
			} else {
				notLanded++
			}
		}
	}

	// Nothing appears that nobody sent, or that was sent on another base.
	for _, vid := range sortedKeys(vids) {
		if !attribute {
			break
		}
		where := map[string][]string{} // hash -> "node i lsn l"
		lsnOf := map[string]uint64{}
		for _, i := range read {
			for h, lsn := range idx[i].byHash[vid] {
				where[h] = append(where[h], fmt.Sprintf("node %d", i))
				lsnOf[h] = lsn
			}
		}
		for _, h := range sortedKeys(where) {
			lsn := lsnOf[h]
			cands := sent[vid][h]
			if len(cands) == 0 {
				an.addf("vid %s lsn %d: hash %s on %s was never sent by a client", vid, lsn, short(h), strings.Join(where[h], ", "))
				continue
			}
			ok, onlyFailed := false, true
			for _, c := range cands {
				if c.p[1].Type != history.Fail {
					onlyFailed = false
					if c.base+1 == lsn {
						ok = true
					}
				}
			}
			if !ok && !onlyFailed { // failed ones are reported above
				an.addf("vid %s lsn %d: hash %s on %s was sent on base %d by %s", vid, lsn, short(h), strings.Join(where[h], ", "), cands[0].base, opRef(cands[0].p))
			}
		}
	}

	fallback := Valid
	if len(read) < len(finals) || len(read) == 0 {
		fallback = Unknown
	}
	heads := map[string]uint64{}
	if len(read) > 0 {
		for vid := range vids {
			heads[vid] = idx[read[0]].head[vid]
		}
	}
	stats := map[string]any{
		"nodes":              len(finals),
		"nodes_read":         len(read),
		"volumes":            len(vids),
		"heads":              heads,
		"acked":              acked,
		"failed":             failed,
		"unknown_landed":     landed,
		"unknown_not_landed": notLanded,
	}
	if len(horizons) > 0 {
		stats["horizons"] = horizons
		stats["acked_below_horizon"] = belowHorizon
	}
	return an.result("chain", fallback, stats)
}

// indexChains checks that node's chains are gap-free from 1 (from the
// volume's horizon, when horizons has one) with one hash per LSN and in
// order, and indexes them.
func indexChains(an *anomalies, node int, chains map[string][]Entry, horizons map[string]uint64) *chainIndex {
	x := &chainIndex{byLSN: map[string]map[uint64]string{}, byHash: map[string]map[string]uint64{}, head: map[string]uint64{}}
	for _, vid := range sortedKeys(chains) {
		entries := chains[vid]
		byLSN, byHash := map[uint64]string{}, map[string]uint64{}
		x.byLSN[vid], x.byHash[vid] = byLSN, byHash
		var head uint64
		sorted := true
		for j, e := range entries {
			if j > 0 && e.LSN <= entries[j-1].LSN {
				sorted = false
			}
			if e.LSN == 0 {
				an.addf("vid %s: node %d has an entry at lsn 0 (hash %s)", vid, node, short(e.Hash))
				continue
			}
			if h, ok := byLSN[e.LSN]; ok {
				if h != e.Hash {
					an.addf("vid %s lsn %d: node %d has two hashes: %s and %s", vid, e.LSN, node, short(h), short(e.Hash))
				}
				continue
			}
			if l, ok := byHash[e.Hash]; ok {
				an.addf("vid %s: node %d has hash %s at lsn %d and %d", vid, node, short(e.Hash), l, e.LSN)
			} else {
				byHash[e.Hash] = e.LSN
			}
			byLSN[e.LSN] = e.Hash
			head = max(head, e.LSN)
		}
		x.head[vid] = head
		if !sorted {
			an.addf("vid %s: node %d's chain is not in ascending lsn order", vid, node)
		}
		for lsn := max(1, horizons[vid]); lsn <= head; lsn++ {
			if _, ok := byLSN[lsn]; ok {
				continue
			}
			gapEnd := lsn
			for gapEnd+1 <= head {
				if _, ok := byLSN[gapEnd+1]; ok {
					break
				}
				gapEnd++
			}
			an.addf("vid %s: node %d's chain has a gap: lsn %d..%d missing below head %d", vid, node, lsn, gapEnd, head)
			lsn = gapEnd
		}
	}
	return x
}

// checkReplicas compares every read node's chains with the first's.
func checkReplicas(an *anomalies, idx []*chainIndex, read []int, vids []string, horizons map[string]uint64) {
	if len(read) < 2 {
		return
	}
	ref := read[0]
	for _, vid := range vids {
		for _, i := range read[1:] {
			a, b := idx[ref], idx[i]
			ha, hb := a.head[vid], b.head[vid]
			for lsn := max(1, horizons[vid]); lsn <= min(ha, hb); lsn++ {
				if x, y := a.byLSN[vid][lsn], b.byLSN[vid][lsn]; x != y {
					an.addf("vid %s lsn %d: replicas diverge: node %d has %s, node %d has %s", vid, lsn, ref, short(x), i, short(y))
					break
				}
			}
			if ha != hb {
				an.addf("vid %s: replicas differ in length: node %d head %d, node %d head %d", vid, ref, ha, i, hb)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
