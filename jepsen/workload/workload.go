// Package workload drives graft clients for the consistency suite and
// records every operation in a history: register (commit chains on a few
// hot volumes, many processes racing on the same base), bank (balances in
// pages, transfers as commits, totals conserved) and ryw (read-your-writes
// across nodes with at_least_lsn).
//
// A process runs one operation at a time, against one node (its client
// proxy), with a per-operation timeout. An operation whose outcome is
// unknown (timeout, unavailable after retries, lost connection) is
// recorded as info, and the process is retired: its successor gets a new
// process number, as in Jepsen, since the old one may still take effect.
package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/volume"
)

// Env is what a workload runs against.
type Env struct {
	// Endpoints are the nodes' client endpoints (through the client
	// proxies), one per node.
	Endpoints []string
	// Edges are `graft edge` endpoints. When set, register and ryw send
	// their reads through them (worker w's to edge w mod len(Edges)) and
	// their commits to the nodes as before; register's reads also read
	// every page at the head, at the worker's previous read snapshot and
	// at times at an older one (history.Op.PageReads, checked by
	// checker.PageReads).
	Edges []string
	// ReadRetained (runs with retention: the gc nemesis) makes register's
	// reads at a node also read every page at a random snapshot up to
	// 1024 LSNs below the head it read (history.Op.PageReads; below the
	// horizon the read fails and goes unrecorded). The retained checker
	// verifies them: snapshots served while GC, compaction and rewritten
	// checkpoint generations change the bucket under them.
	ReadRetained bool
	// Rec records the history.
	Rec *history.Recorder
	// Seed makes the run's choices reproducible (fault timing and server
	// behaviour still vary).
	Seed uint64
	// Processes is the number of concurrent client processes. Default 10.
	Processes int
	// Volumes is the number of volumes (register, ryw). Default 3.
	Volumes int
	// OpTimeout bounds one operation. Default 2s.
	OpTimeout time.Duration
	// ClientOptions are added to every client the workload makes (a
	// secure cluster's CA and token). Default none.
	ClientOptions []client.Option
	// Binary is the graft binary (sqlite-bank runs its clients as
	// `graft jepsen-sqlite-client` processes). Required by sqlite-bank.
	Binary string
	// Dir is a scratch directory (sqlite-bank's replica directories).
	// Required by sqlite-bank.
	Dir string
	// Log receives progress.
	Log *slog.Logger
}

func (e *Env) defaults() {
	if e.Processes <= 0 {
		e.Processes = 10
	}
	if e.Volumes <= 0 {
		e.Volumes = 3
	}
	if e.OpTimeout <= 0 {
		e.OpTimeout = 2 * time.Second
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
}

// Workload generates operations.
type Workload interface {
	// Name is the workload's name on the command line.
	Name() string
	// Setup prepares the cluster (for example the bank's opening
	// balances); it is not part of the checked history unless recorded.
	Setup(ctx context.Context, env *Env) error
	// Run runs env.Processes processes until ctx ends.
	Run(ctx context.Context, env *Env) error
	// VIDs are the volumes the workload uses (for the final reads).
	VIDs() []volume.ID
}

// New returns the workload called name.
func New(name string, seed uint64) (Workload, error) {
	switch name {
	case "register", "":
		return &Register{seed: seed}, nil
	case "bank":
		return &Bank{seed: seed}, nil
	case "ryw":
		return &RYW{seed: seed}, nil
	case "sqlite-bank":
		return &SQLBank{seed: seed}, nil
	default:
		return nil, fmt.Errorf("unknown workload %q: want register, bank, ryw or sqlite-bank", name)
	}
}

// newClient returns a client that talks only to endpoint: its own retries
// (same content, so an identical commit is recognised) stay on that node.
func newClient(env *Env, endpoint string) (*client.Client, error) {
	opts := append([]client.Option{client.WithAttempts(3), client.WithBackoff(20 * time.Millisecond), client.WithAttemptTimeout(time.Second)}, env.ClientOptions...)
	return client.New([]string{endpoint}, opts...)
}

// outcome classifies a client error: nil is ok, a conflict is a certain
// failure, anything else leaves the outcome unknown.
func outcome(err error) history.Type {
	switch {
	case err == nil:
		return history.OK
	case errors.Is(err, client.ErrConflict):
		return history.Fail
	default:
		return history.Info
	}
}

// PageData is the content a commit with seed writes to page idx: 4096
// bytes from a PRNG, so checkers can regenerate and compare them.
func PageData(seed uint64, idx uint32) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(idx)))
	b := make([]byte, volume.PageSize)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// processes runs n workers; worker w calls op(ctx, proc, rng) in a loop
// until ctx ends. op returns whether the process must be retired (its last
// operation's outcome is unknown); the worker then continues under a new
// process number.
func processes(ctx context.Context, n int, seed uint64, op func(ctx context.Context, proc, worker int, rng *rand.Rand) (retire bool)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			proc := w
			for ctx.Err() == nil {
				if op(ctx, proc, w, rng) {
					proc += n
					// Back off after an unknown outcome, as a real client
					// would: with every node down, a tight loop would only
					// pile up thousands of undecidable operations.
					sleep(ctx, time.Duration(100+rng.IntN(200))*time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

// headReader reads a volume's head and the hash of the commit there: a
// linearizable snapshot, then (immutable, any consistency) the commit
// metadata at that LSN.
func readHead(ctx context.Context, c *client.Client, vid volume.ID) (volume.LSN, string, error) {
	snap, err := c.Snapshot(ctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable})
	if err != nil {
		return 0, "", err
	}
	if snap.LSN == 0 {
		return 0, "", nil
	}
	_, cs, _, err := c.PullCommits(ctx, vid, snap.LSN-1, snap.LSN, 1, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: snap.LSN})
	if err != nil {
		return 0, "", err
	}
	if len(cs) != 1 || cs[0].LSN != snap.LSN {
		return 0, "", fmt.Errorf("pull commits at %d returned %d entries", snap.LSN, len(cs))
	}
	return snap.LSN, cs[0].Hash.String(), nil
}

// readPageSums reads every page of a register volume at snapshot lsn
// (fixed, so an edge answers from its cache when it can) and returns
// each page's version and byte sum.
func readPageSums(ctx context.Context, c *client.Client, vid volume.ID, lsn volume.LSN) ([]history.PageRead, error) {
	idxs := make([]volume.PageIdx, registerPageCount)
	for i := range idxs {
		idxs[i] = volume.PageIdx(i + 1)
	}
	_, pages, err := c.ReadPages(ctx, vid, lsn, idxs, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: lsn})
	if err != nil {
		return nil, err
	}
	if len(pages) != len(idxs) {
		return nil, fmt.Errorf("read pages at %d: %d pages, want %d", lsn, len(pages), len(idxs))
	}
	out := make([]history.PageRead, len(pages))
	for i, p := range pages {
		out[i] = history.PageRead{LSN: uint64(lsn), Idx: uint32(p.Idx), Ver: uint64(p.LSN), Sum: PageSum(p.Data)}
	}
	return out, nil
}

// PageSum is the FNV-64a sum of a page's bytes, in hex, as recorded in
// history.PageRead.
func PageSum(b []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}

// readClients returns the clients reads use and how to name the endpoint
// of worker w in the history: the edges when there are, else the nodes.
func readClients(env *Env, nodes []*client.Client) (func(w, node int) (*client.Client, int, string), error) {
	if len(env.Edges) == 0 {
		return func(_, node int) (*client.Client, int, string) { return nodes[node], node, "" }, nil
	}
	edges := make([]*client.Client, len(env.Edges))
	for i, e := range env.Edges {
		c, err := newClient(env, e)
		if err != nil {
			return nil, err
		}
		edges[i] = c
	}
	return func(w, _ int) (*client.Client, int, string) {
		k := w % len(edges)
		return edges[k], -1, fmt.Sprintf("e%d", k+1)
	}, nil
}

func asConflict(err error, target **client.ConflictError) bool { return errors.As(err, target) }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
