package jepsen

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/workload"
	"github.com/graft-cluster/graft/volume"
)

// retainedPages are the page indexes the register workload writes.
const retainedPages = 8

// writer is a commit that wrote pages at lsn with seed's bytes.
type writer struct {
	lsn   uint64
	seed  uint64
	pages []uint32
}

// volumeWriters are a volume's commits as the history and the final chain
// tell them: known landed at their LSN (acked, or unknown and in the
// chain), maybe landed at base+1 (unknown, below the chain's start).
type volumeWriters struct {
	known, maybe []writer
}

// writersOf sorts the register history's commits by volume. chains are the
// final chains (the reference node's), starting at each volume's horizon.
func writersOf(ops []history.Op, chains map[string][]checker.Entry) map[string]*volumeWriters {
	out := map[string]*volumeWriters{}
	inChain := map[string]map[uint64]string{}
	first := map[string]uint64{}
	for vid, ch := range chains {
		m := map[uint64]string{}
		for j, e := range ch {
			m[e.LSN] = e.Hash
			if j == 0 {
				first[vid] = e.LSN
			}
		}
		inChain[vid] = m
	}
	for _, p := range history.Pairs(ops) {
		inv, done := p[0], p[1]
		if inv.F != "commit" || len(inv.Pages) == 0 || done.Type == history.Fail {
			continue
		}
		w := out[inv.VID]
		if w == nil {
			w = &volumeWriters{}
			out[inv.VID] = w
		}
		switch at := inv.Base + 1; {
		case done.Type == history.OK:
			w.known = append(w.known, writer{done.LSN, inv.Seed, inv.Pages})
		case at >= first[inv.VID] && first[inv.VID] > 0:
			if inChain[inv.VID][at] == inv.Hash {
				w.known = append(w.known, writer{at, inv.Seed, inv.Pages})
			}
		default:
			w.maybe = append(w.maybe, writer{at, inv.Seed, inv.Pages})
		}
	}
	return out
}

// expect returns the version and bytes of page idx at lsn, and false when
// the history cannot tell (a commit of unknown outcome may have written it
// since the last one known).
func (vw *volumeWriters) expect(idx uint32, lsn uint64) (uint64, []byte, bool) {
	var last *writer
	for i := range vw.known {
		w := &vw.known[i]
		if w.lsn <= lsn && slices.Contains(w.pages, idx) && (last == nil || w.lsn > last.lsn) {
			last = w
		}
	}
	var lastLSN uint64
	if last != nil {
		lastLSN = last.lsn
	}
	for _, w := range vw.maybe {
		if w.lsn > lastLSN && w.lsn <= lsn && slices.Contains(w.pages, idx) {
			return 0, nil, false
		}
	}
	if last == nil {
		return 0, make([]byte, volume.PageSize), true
	}
	return last.lsn, workload.PageData(last.seed, idx), true
}

// checkRetained reads every page of every volume at every retained
// snapshot (each LSN from the volume's horizon to its head) and compares
// each with what the history says the page held then. Snapshots below the
// horizon are the page check's (out_of_range); these are the ones a
// checkpoint and the records after it serve, the ones GC must keep.
func checkRetained(ctx context.Context, cl *client.Client, ops []history.Op, chains map[string][]checker.Entry, horizons map[string]uint64) checker.Result {
	res := checker.Result{Name: "retained", Valid: checker.Valid, Anomalies: []string{}, Stats: map[string]any{}}
	writers := writersOf(ops, chains)
	var snapshots, pages, undecided, moved, unreadable int
	var firstUnreadable string
	idxs := make([]volume.PageIdx, retainedPages)
	for i := range idxs {
		idxs[i] = volume.PageIdx(i + 1)
	}
	for _, vid := range slices.Sorted(func(yield func(string) bool) {
		for v := range chains {
			if !yield(v) {
				return
			}
		}
	}) {
		ch := chains[vid]
		if len(ch) == 0 {
			continue
		}
		id, err := volume.ParseID(vid)
		if err != nil {
			continue
		}
		vw := writers[vid]
		if vw == nil {
			vw = &volumeWriters{}
		}
		head := ch[len(ch)-1].LSN
		for lsn := max(1, horizons[vid]); lsn <= head; lsn++ {
			_, got, err := cl.ReadPages(ctx, id, volume.LSN(lsn), idxs, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: volume.LSN(lsn)})
			if oldest, ok := oldestReadable(err); ok && oldest > lsn {
				// GC moved the horizon since the chains were read.
				moved++
				continue
			}
			if err != nil {
				if ctx.Err() != nil || transient(err) {
					if unreadable == 0 {
						firstUnreadable = err.Error()
					}
					unreadable++
					continue
				}
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("vid %s lsn %d (retained: horizon %d, head %d): read: %v", vid, lsn, horizons[vid], head, err))
				continue
			}
			snapshots++
			for i, p := range got {
				idx := uint32(idxs[i])
				wantLSN, want, ok := vw.expect(idx, lsn)
				if !ok {
					undecided++
					continue
				}
				pages++
				if uint64(p.LSN) != wantLSN || !bytes.Equal(p.Data, want) {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("vid %s lsn %d page %d: version %d, want %d (bytes equal: %v)", vid, lsn, idx, p.LSN, wantLSN, bytes.Equal(p.Data, want)))
				}
			}
		}
	}
	// The page reads the workload made during the run (ReadRetained: at
	// recent snapshots, while GC and compaction changed the bucket).
	var runPages int
	for _, p := range history.Pairs(ops) {
		done := p[1]
		if done.Type != history.OK {
			continue
		}
		for _, e := range done.PageReadLost {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("vid %s (read during the run): data_loss at a recent snapshot: %s", done.VID, e))
		}
		vw := writers[done.VID]
		if vw == nil {
			vw = &volumeWriters{}
		}
		for _, pr := range done.PageReads {
			wantLSN, want, ok := vw.expect(pr.Idx, pr.LSN)
			if !ok {
				continue
			}
			runPages++
			if pr.Ver != wantLSN || pr.Sum != workload.PageSum(want) {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("vid %s lsn %d page %d (read during the run): version %d, want %d (bytes equal: %v)", done.VID, pr.LSN, pr.Idx, pr.Ver, wantLSN, pr.Sum == workload.PageSum(want)))
			}
		}
	}
	if n := len(res.Anomalies); n > checker.MaxAnomalies {
		res.Anomalies = append(res.Anomalies[:checker.MaxAnomalies], fmt.Sprintf("... and %d more", n-checker.MaxAnomalies))
	}
	res.Stats = map[string]any{"snapshots": snapshots, "pages": pages, "undecided_pages": undecided, "horizon_moved": moved, "unreadable": unreadable, "run_pages": runPages}
	switch {
	case len(res.Anomalies) > 0:
		res.Valid = checker.Invalid
	case unreadable > 0:
		res.Valid = checker.Unknown
		res.Stats["first_unreadable"] = firstUnreadable
	}
	return res
}
