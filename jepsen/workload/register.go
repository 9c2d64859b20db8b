package workload

import (
	"connectrpc.com/connect"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/volume"
)

// registerPageCount is the page count of every register commit.
const registerPageCount = 8

// Register is the commit-chain workload: processes commit to a few hot
// volumes on the base they last saw (so many race on the same base and
// most lose with a conflict), and read heads linearizably. Each volume is
// a register of (lsn, hash) checked with Porcupine.
type Register struct {
	seed uint64
	vids []volume.ID
}

// Name implements Workload.
func (r *Register) Name() string { return "register" }

// VIDs implements Workload.
func (r *Register) VIDs() []volume.ID { return r.vids }

// Setup mints the volumes.
func (r *Register) Setup(_ context.Context, env *Env) error {
	env.defaults()
	r.vids = mintVIDs(env.Volumes, r.seed)
	return nil
}

// mintVIDs makes n volume IDs from seed, so a run's volumes are stable.
func mintVIDs(n int, seed uint64) []volume.ID {
	rng := rand.New(rand.NewPCG(seed, 0x766964))
	out := make([]volume.ID, n)
	for i := range out {
		var b [16]byte
		b[0] = 0x80
		for j := 1; j < 16; j++ {
			b[j] = byte(rng.Uint32())
		}
		out[i] = volume.ID(b)
	}
	return out
}

// Run implements Workload.
func (r *Register) Run(ctx context.Context, env *Env) error {
	env.defaults()
	clients, err := clientsFor(env)
	if err != nil {
		return err
	}
	reader, err := readClients(env, clients)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	heads := map[[2]int]volume.LSN{}    // (worker, volume) -> last head seen
	lastRead := map[[2]int]volume.LSN{} // (worker, volume) -> last head read
	processes(ctx, env.Processes, env.Seed, func(ctx context.Context, proc, w int, rng *rand.Rand) bool {
		node := w % len(env.Endpoints)
		c := clients[node]
		vi := rng.IntN(len(r.vids))
		vid := r.vids[vi]
		octx, cancel := context.WithTimeout(ctx, env.OpTimeout)
		defer cancel()
		if rng.IntN(4) == 0 {
			rc, rnode, via := reader(w, node)
			env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "read", Node: rnode, Via: via, VID: vid.String()})
			lsn, hash, err := readHead(octx, rc, vid)
			done := history.Op{Process: proc, Type: history.OK, F: "read", Node: rnode, Via: via, VID: vid.String(), LSN: uint64(lsn), Hash: hash}
			if err != nil {
				// A read has no effect: failing it is always safe.
				done = history.Op{Process: proc, Type: history.Fail, F: "read", Node: rnode, Via: via, VID: vid.String(), Error: err.Error()}
			} else {
				mu.Lock()
				heads[[2]int{w, vi}] = lsn
				prev := lastRead[[2]int{w, vi}]
				lastRead[[2]int{w, vi}] = lsn
				mu.Unlock()
				if env.ReadRetained && via == "" && lsn > 1 {
					old := lsn - volume.LSN(1+rng.IntN(int(min(lsn-1, 1024))))
					prs, err := readPageSums(octx, rc, vid, old)
					switch {
					case err == nil:
						done.PageReads = append(done.PageReads, prs...)
					case connect.CodeOf(err) == connect.CodeDataLoss:
						done.PageReadLost = append(done.PageReadLost, fmt.Sprintf("lsn %d: %v", old, err))
					}
				}
				if via != "" && lsn > 0 {
					// Through an edge, also read the pages at the head, at
					// this worker's previous read (a snapshot the edge has
					// cached) and, half the time, at a random snapshot in
					// the older half: a failed page read only goes
					// unrecorded.
					if prs, err := readPageSums(octx, rc, vid, lsn); err == nil {
						done.PageReads = append(done.PageReads, prs...)
					}
					if prev > 0 && prev < lsn {
						if prs, err := readPageSums(octx, rc, vid, prev); err == nil {
							done.PageReads = append(done.PageReads, prs...)
						}
					}
					// And at an older snapshot, likely flushed: the edge
					// reads it from the bucket.
					if old := volume.LSN(1 + rng.IntN(int(lsn))); old < lsn/2 {
						if prs, err := readPageSums(octx, rc, vid, old); err == nil {
							done.PageReads = append(done.PageReads, prs...)
						}
					}
				}
			}
			env.Rec.Add(done)
			return false
		}
		mu.Lock()
		base := heads[[2]int{w, vi}]
		mu.Unlock()
		seed := rng.Uint64()
		idxs := []uint32{uint32(1 + rng.IntN(registerPageCount))}
		if rng.IntN(2) == 0 {
			if j := uint32(1 + rng.IntN(registerPageCount)); j != idxs[0] {
				idxs = append(idxs, j)
			}
		}
		pages := make([]volume.PageWrite, len(idxs))
		for i, idx := range idxs {
			pages[i] = volume.PageWrite{Idx: volume.PageIdx(idx), Data: PageData(seed, idx)}
		}
		sorted, _ := volume.ValidateCommit(registerPageCount, pages, volume.Limits{})
		hash := volume.CommitHash(vid, base+1, registerPageCount, sorted).String()
		inv := history.Op{Process: proc, Type: history.Invoke, F: "commit", Node: node, VID: vid.String(), Base: uint64(base), Hash: hash, Seed: seed, Pages: idxs}
		env.Rec.Add(inv)
		snap, err := c.Commit(octx, vid, base, registerPageCount, pages)
		done := inv
		done.Type = outcome(err)
		switch done.Type {
		case history.OK:
			done.LSN = uint64(snap.LSN)
			mu.Lock()
			heads[[2]int{w, vi}] = snap.LSN
			mu.Unlock()
		case history.Fail:
			var ce *client.ConflictError
			if asConflict(err, &ce) {
				done.Head = uint64(ce.Head.LSN)
				mu.Lock()
				heads[[2]int{w, vi}] = ce.Head.LSN
				mu.Unlock()
			}
			done.Error = err.Error()
		default:
			done.Error = err.Error()
		}
		env.Rec.Add(done)
		return done.Type == history.Info
	})
	return nil
}

func clientsFor(env *Env) ([]*client.Client, error) {
	out := make([]*client.Client, len(env.Endpoints))
	for i, e := range env.Endpoints {
		c, err := newClient(env, e)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}
