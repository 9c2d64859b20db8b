package workload

import (
	"context"
	"math/rand/v2"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/volume"
)

// RYW is the read-your-writes workload: each process owns a volume,
// commits through one node, then reads the head through another node with
// at_least_lsn set to the LSN it was acknowledged: it must see its write.
// Through edges (Env.Edges) its reads also read the pages, as register's
// do (history.Op.PageReads).
type RYW struct {
	seed uint64
	vids []volume.ID
}

// Name implements Workload.
func (r *RYW) Name() string { return "ryw" }

// VIDs implements Workload.
func (r *RYW) VIDs() []volume.ID { return r.vids }

// Setup mints one volume per process.
func (r *RYW) Setup(_ context.Context, env *Env) error {
	env.defaults()
	r.vids = mintVIDs(env.Processes, r.seed^0x727977)
	return nil
}

// Run implements Workload.
func (r *RYW) Run(ctx context.Context, env *Env) error {
	env.defaults()
	clients, err := clientsFor(env)
	if err != nil {
		return err
	}
	reader, err := readClients(env, clients)
	if err != nil {
		return err
	}
	heads := make([]volume.LSN, env.Processes)
	lastRead := make([]volume.LSN, env.Processes) // worker -> the snapshot its last edge read saw
	processes(ctx, env.Processes, env.Seed, func(ctx context.Context, proc, w int, rng *rand.Rand) bool {
		n := len(env.Endpoints)
		wnode, rnode := (w+rng.IntN(n))%n, 0
		rnode = (wnode + 1 + rng.IntN(max(1, n-1))) % n
		vid := r.vids[w]
		octx, cancel := context.WithTimeout(ctx, env.OpTimeout)
		defer cancel()
		base := heads[w]
		seed := rng.Uint64()
		idx := uint32(1 + rng.IntN(registerPageCount))
		pages := []volume.PageWrite{{Idx: volume.PageIdx(idx), Data: PageData(seed, idx)}}
		hash := volume.CommitHash(vid, base+1, registerPageCount, pages).String()
		inv := env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "commit", Node: wnode, VID: vid.String(), Base: uint64(base), Hash: hash, Seed: seed, Pages: []uint32{idx}})
		snap, err := clients[wnode].Commit(octx, vid, base, registerPageCount, pages)
		done := inv
		done.Type = outcome(err)
		if err != nil {
			done.Error = err.Error()
			env.Rec.Add(done)
			if done.Type == history.Info {
				// Learn the head again before the next commit.
				if lsn, _, err := readHead(ctx, clients[rnode], vid); err == nil {
					heads[w] = lsn
				}
				return true
			}
			var ce *client.ConflictError
			if asConflict(err, &ce) {
				heads[w] = ce.Head.LSN
			}
			return false
		}
		done.LSN = uint64(snap.LSN)
		env.Rec.Add(done)
		heads[w] = snap.LSN

		rctx, rcancel := context.WithTimeout(ctx, env.OpTimeout)
		defer rcancel()
		rc, rn, via := reader(w, rnode)
		env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "read", Node: rn, Via: via, VID: vid.String(), Base: uint64(snap.LSN)})
		rs, err := rc.Snapshot(rctx, vid, 0, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: snap.LSN})
		read := history.Op{Process: proc, Type: history.OK, F: "read", Node: rn, Via: via, VID: vid.String(), Base: uint64(snap.LSN), LSN: uint64(rs.LSN)}
		if err == nil && rs.LSN > 0 {
			var cs []client.CommitInfo
			_, cs, _, err = rc.PullCommits(rctx, vid, rs.LSN-1, rs.LSN, 1, client.ReadOptions{Consistency: client.Stale})
			if err == nil && len(cs) == 1 {
				read.Hash = cs[0].Hash.String()
			}
		}
		if err != nil {
			read = history.Op{Process: proc, Type: history.Fail, F: "read", Node: rn, Via: via, VID: vid.String(), Base: uint64(snap.LSN), Error: err.Error()}
		} else if via != "" && rs.LSN > 0 {
			// Through an edge, also read the pages (checker.PageReads): at
			// the snapshot read, at this worker's previous one (which the
			// edge has resolved: the new one may be resolved from it and
			// the graft between) and, half the time, at an older one
			// (likely flushed: read from the bucket). A failed page read
			// only goes unrecorded.
			at := []volume.LSN{rs.LSN}
			if prev := lastRead[w]; prev > 0 && prev < rs.LSN {
				at = append(at, prev)
			}
			if old := volume.LSN(1 + rng.IntN(int(rs.LSN))); old < rs.LSN/2 {
				at = append(at, old)
			}
			for _, lsn := range at {
				if prs, err := readPageSums(rctx, rc, vid, lsn); err == nil {
					read.PageReads = append(read.PageReads, prs...)
				}
			}
			lastRead[w] = rs.LSN
		}
		env.Rec.Add(read)
		return false
	})
	return nil
}
