// Package nemesis injects faults into a cluster under test on a seeded
// schedule: partitions of several shapes, crashes, pauses, slow links,
// leadership transfers, membership changes and object-store faults
// (blackhole, reset, latency, slow body, HTTP 500/503 answers: see s3.go),
// rolling restarts (rolling.go). Each
// fault is a window [start, end) recorded for the report; every fault is
// healed at its window's end and again when the run stops.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Cluster is what the nemeses act on (jepsen/harness implements it).
type Cluster interface {
	// N is the number of nodes.
	N() int
	// Leader returns the index of the current leader.
	Leader(ctx context.Context) (int, error)
	// Partition cuts every peer link between nodes of different groups.
	Partition(groups [][]int) error
	// CutLinks cuts the directed peer links i->j (node i's connections to
	// node j: Raft and forwarding) for every pair and leaves the others as
	// they are.
	CutLinks(pairs [][2]int) error
	// Heal restores every peer link (no cut, no delay).
	Heal() error
	// SetLinkDelay delays every peer link.
	SetLinkDelay(d, jitter time.Duration) error
	// SetOutboundDelay delays node i's peer links (its connections to the
	// other nodes) and no other link; Heal clears it.
	SetOutboundDelay(i int, d, jitter time.Duration) error
	Kill(i int) error
	Restart(i int) error
	Pause(i int) error
	Resume(i int) error
	TransferLeadership(ctx context.Context) error
	RemoveAndReadd(ctx context.Context, i int) error
	// GracefulRestart restarts node i as a rolling upgrade does: leadership
	// transferred off it if it leads, SIGTERM, start, wait until it is
	// ready and caught up with the leader.
	GracefulRestart(ctx context.Context, i int) error
	// Rejoin makes every node a voting member again (what a
	// RemoveAndReadd cut short left undone).
	Rejoin(ctx context.Context) error
	// S3Down cuts (true) or restores (false) the object store's link;
	// S3Delay delays it.
	S3Down(down bool) error
	S3Delay(d time.Duration) error
}

// EdgeCluster is what the edge nemeses (kill-edge, partition-edge) act
// on, besides Cluster: the `graft edge` processes in front of the nodes.
type EdgeCluster interface {
	// Edges is the number of edges.
	Edges() int
	// KillEdge SIGKILLs edge i; RestartEdge starts it again (cold cache),
	// a no-op when it runs.
	KillEdge(i int) error
	RestartEdge(i int) error
	// PartitionEdge cuts (true) or restores (false) edge i's links to
	// every node and to the object store.
	PartitionEdge(i int, cut bool) error
}

// ErrNoEdges reports an edge nemesis on a cluster without edges.
var ErrNoEdges = errors.New("nemesis: the cluster has no edges")

func edgesOf(c Cluster) (EdgeCluster, error) {
	if ec, ok := c.(EdgeCluster); ok && ec.Edges() > 0 {
		return ec, nil
	}
	return nil, ErrNoEdges
}

// Window is one fault's time span, relative to the run's start.
type Window struct {
	Name  string        `json:"name"`
	What  string        `json:"what"`
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
}

// Names lists every nemesis name the command line accepts.
var Names = []string{
	"none", "partition-leader", "partition-half", "partition-ring", "partition-bridge",
	"kill", "kill-leader", "kill-all", "pause", "pause-leader", "slow-leader", "net-slow", "transfer", "membership",
	"rolling-restart",
	"s3", "s3-blackhole", "s3-reset", "s3-slow", "s3-trickle", "s3-errors", // see S3Modes
	"kill-edge", "partition-edge", // need edges (graft jepsen --edge N)
	"gc", // aggressive checkpoints, retention and GC (GCNodeArgs), windows force flush rounds
}

// GCNodeArgs are the `graft node` flags a run with the gc nemesis starts
// every node with: a checkpoint every 4 log records, each volume's last 16
// snapshots retained, a GC step every second deleting 2 s after its round
// commits, and compaction of every segment with a dead page (compact-below
// 1). With flushes every 50-300 ms the horizon moves, checkpoints are
// written, segments compacted and objects deleted all through the run (and
// during the final reads, which the checkers allow for).
var GCNodeArgs = []string{"--checkpoint-records", "4", "--retain-lsns", "16", "--gc-interval", "1s", "--gc-grace", "2s", "--compact-below", "1"}

// Flusher is what the gc nemesis acts with besides Cluster: a flush round
// of every buffered commit (graft cluster flush), which is what makes
// checkpoints and GC rounds follow.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Parse splits a comma-separated list of nemesis names and checks them.
func Parse(s string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(Names, n) {
			return nil, fmt.Errorf("unknown nemesis %q (known: %s)", n, strings.Join(Names, ", "))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		out = []string{"none"}
	}
	return out, nil
}

// Schedule configures Run.
type Schedule struct {
	// Names are the nemeses to draw from (see Names).
	Names []string
	// Seed makes the choices reproducible.
	Seed uint64
	// Quiet is the healthy time before each fault; Hold how long a fault
	// lasts. Defaults 3s and 5s; each is jittered by up to 50%.
	Quiet, Hold time.Duration
	// Start is the run's start (fault windows are relative to it).
	Start time.Time
	// OpTimeout is the workload's operation timeout; pause-leader sizes
	// its pauses from it. Default 2s.
	OpTimeout time.Duration
	Log       *slog.Logger
	// Quarantine is what the quarantine nemesis acts with (quarantine.go).
	Quarantine *QuarantineEnv
}

// Run injects faults until ctx ends, then heals everything, and returns
// the fault windows.
func Run(ctx context.Context, c Cluster, s Schedule) []Window {
	if s.Quiet <= 0 {
		s.Quiet = 3 * time.Second
	}
	if s.Hold <= 0 {
		s.Hold = 5 * time.Second
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x6e656d))
	var names []string
	for _, n := range s.Names {
		if n != "none" {
			names = append(names, n)
		}
	}
	var windows []Window
	jitter := func(d time.Duration) time.Duration { return d/2 + time.Duration(rng.Int64N(int64(d))) }
	for len(names) > 0 {
		if !sleep(ctx, jitter(s.Quiet)) {
			break
		}
		name := names[rng.IntN(len(names))]
		f := newFault(name, rng, s.OpTimeout)
		if name == "quarantine" {
			f = quarantineFault(s.Quarantine, rng)
		}
		w := Window{Name: name, Start: time.Since(s.Start)}
		what, err := f.start(ctx, c)
		w.What = what
		if err != nil {
			s.Log.Warn("nemesis start failed", "nemesis", name, "err", err)
		} else {
			s.Log.Info("nemesis start", "nemesis", name, "what", what)
		}
		sleep(ctx, jitter(s.Hold))
		// Heal with a fresh context: the run's may have ended.
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := f.stop(hctx, c); err != nil {
			s.Log.Warn("nemesis stop failed", "nemesis", name, "err", err)
		}
		cancel()
		w.End = time.Since(s.Start)
		s.Log.Info("nemesis stop", "nemesis", name)
		windows = append(windows, w)
	}
	HealAll(c, s.Log)
	return windows
}

// HealAll undoes every fault: links, object store, paused and dead nodes.
func HealAll(c Cluster, log *slog.Logger) {
	hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range []error{c.Heal(), healS3(hctx, c)} {
		if err != nil {
			log.Warn("heal", "err", err)
		}
	}
	for i := range c.N() {
		_ = c.Resume(i)
		_ = c.Restart(i) // no-op for a running node
	}
	if ec, err := edgesOf(c); err == nil {
		for i := range ec.Edges() {
			if err := ec.PartitionEdge(i, false); err != nil {
				log.Warn("heal edge", "edge", i+1, "err", err)
			}
			if err := ec.RestartEdge(i); err != nil { // no-op for a running edge
				log.Warn("heal edge", "edge", i+1, "err", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fault is one nemesis instance: start injects, stop heals.
type fault struct {
	start func(ctx context.Context, c Cluster) (string, error)
	stop  func(ctx context.Context, c Cluster) error
}

func newFault(name string, rng *rand.Rand, opTimeout time.Duration) fault {
	heal := func(_ context.Context, c Cluster) error { return c.Heal() }
	switch name {
	case "gc":
		// The retention settings (GCNodeArgs) do the work; a window forces
		// flush rounds at its start and end, so checkpoints and GC rounds
		// come in bursts while the other nemeses act.
		flush := func(ctx context.Context, c Cluster) error {
			f, ok := c.(Flusher)
			if !ok {
				return errors.New("nemesis: gc needs a cluster that can flush")
			}
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return f.Flush(fctx)
		}
		return fault{start: func(ctx context.Context, c Cluster) (string, error) {
			return "flush rounds (checkpoints every 4 records, retain 16 lsns, gc every 1s, grace 2s)", flush(ctx, c)
		}, stop: flush}
	case "partition-leader":
		// The old leader is isolated while the others elect a new one and
		// take writes; on heal it rejoins (hashicorp/raft#695's scenario).
		return fault{start: func(ctx context.Context, c Cluster) (string, error) {
			l, err := c.Leader(ctx)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("isolate leader n%d", l+1), c.Partition([][]int{{l}, others(c.N(), l)})
		}, stop: heal}
	case "partition-half":
		return fault{start: func(_ context.Context, c Cluster) (string, error) {
			perm := rng.Perm(c.N())
			k := c.N() / 2
			groups := [][]int{perm[:k], perm[k:]}
			return fmt.Sprintf("split %v | %v", plus1(groups[0]), plus1(groups[1])), c.Partition(groups)
		}, stop: heal}
	case "partition-ring":
		// In ring order, each node reaches only the next n/2 nodes (with
		// itself, a majority), so no two nodes see the same majority. With
		// 3 nodes: n_a -> n_b -> n_c -> n_a, each link one-way.
		return fault{start: func(_ context.Context, c Cluster) (string, error) {
			n := c.N()
			perm := rng.Perm(n)
			var cut [][2]int
			for k := range n {
				for d := n/2 + 1; d < n; d++ {
					cut = append(cut, [2]int{perm[k], perm[(k+d)%n]})
				}
			}
			return fmt.Sprintf("ring %v, one-way cuts %v", plus1(perm), cutNames(cut)), c.CutLinks(cut)
		}, stop: heal}
	case "partition-bridge":
		// Two halves that cannot talk, joined only through one bridge node.
		return fault{start: func(_ context.Context, c Cluster) (string, error) {
			perm := rng.Perm(c.N())
			bridge := perm[0]
			rest := perm[1:]
			a, b := rest[:len(rest)/2], rest[len(rest)/2:]
			var cut [][2]int
			for _, x := range a {
				for _, y := range b {
					cut = append(cut, [2]int{x, y}, [2]int{y, x})
				}
			}
			return fmt.Sprintf("bridge n%d between %v and %v", bridge+1, plus1(a), plus1(b)), c.CutLinks(cut)
		}, stop: heal}
	case "kill", "kill-leader":
		var victim int
		return fault{start: func(ctx context.Context, c Cluster) (string, error) {
			victim = rng.IntN(c.N())
			if name == "kill-leader" {
				l, err := c.Leader(ctx)
				if err != nil {
					return "", err
				}
				victim = l
			}
			return fmt.Sprintf("SIGKILL n%d", victim+1), c.Kill(victim)
		}, stop: func(_ context.Context, c Cluster) error { return c.Restart(victim) }}
	case "kill-all":
		return fault{start: func(_ context.Context, c Cluster) (string, error) {
			var errs []error
			for i := range c.N() {
				if err := c.Kill(i); err != nil {
					errs = append(errs, err)
				}
			}
			return "SIGKILL every node", joinErrs(errs)
		}, stop: func(_ context.Context, c Cluster) error {
			var errs []error
			for i := range c.N() {
				if err := c.Restart(i); err != nil {
					errs = append(errs, err)
				}
			}
			return joinErrs(errs)
		}}
	case "pause":
		var victim int
		return fault{start: func(ctx context.Context, c Cluster) (string, error) {
			victim = rng.IntN(c.N())
			if rng.IntN(2) == 0 {
				if l, err := c.Leader(ctx); err == nil {
					victim = l
				}
			}
			return fmt.Sprintf("SIGSTOP n%d", victim+1), c.Pause(victim)
		}, stop: func(_ context.Context, c Cluster) error { return c.Resume(victim) }}
	case "net-slow":
		return fault{start: func(_ context.Context, c Cluster) (string, error) {
			d := time.Duration(20+rng.IntN(180)) * time.Millisecond
			return fmt.Sprintf("delay peer links %s +- %s", d, d/2), c.SetLinkDelay(d, d/2)
		}, stop: heal}
	case "transfer":
		// Several leadership transfers in a row, under load.
		var mu sync.Mutex
		done := make(chan struct{})
		stopped := make(chan struct{})
		return fault{start: func(ctx context.Context, c Cluster) (string, error) {
			go func() {
				defer close(stopped)
				for {
					mu.Lock()
					_ = c.TransferLeadership(ctx)
					mu.Unlock()
					select {
					case <-done:
						return
					case <-time.After(time.Duration(300+rng.IntN(700)) * time.Millisecond):
					}
				}
			}()
			return "transfer leadership repeatedly", nil
		}, stop: func(_ context.Context, c Cluster) error { close(done); <-stopped; return nil }}
	case "membership":
		// A step cut short (the run's time ran out between the removal and
		// the re-add) is finished at stop: the node rejoins. A step starts
		// from a whole cluster: it never removes a second member while an
		// earlier one is still out.
		var failed bool
		return fault{start: func(ctx context.Context, c Cluster) (string, error) {
			victim := rng.IntN(c.N())
			what := fmt.Sprintf("remove n%d, wipe its data, add it back", victim+1)
			if err := c.Rejoin(ctx); err != nil {
				failed = true
				return what, fmt.Errorf("not every node is a member; not removing another: %w", err)
			}
			err := c.RemoveAndReadd(ctx, victim)
			failed = err != nil
			return what, err
		}, stop: func(ctx context.Context, c Cluster) error {
			if !failed {
				return nil
			}
			return c.Rejoin(ctx)
		}}
	case "kill-edge":
		// An edge dies and comes back with a cold cache (no disk tier):
		// its clients' reads fail meanwhile, and afterwards it must not
		// serve anything it did not read again.
		var victim int
		return fault{start: func(_ context.Context, c Cluster) (string, error) {
			ec, err := edgesOf(c)
			if err != nil {
				return "", err
			}
			victim = rng.IntN(ec.Edges())
			return fmt.Sprintf("SIGKILL e%d", victim+1), ec.KillEdge(victim)
		}, stop: func(_ context.Context, c Cluster) error {
			ec, err := edgesOf(c)
			if err != nil {
				return err
			}
			return ec.RestartEdge(victim)
		}}
	case "partition-edge":
		// An edge is cut off every node and the bucket while its clients
		// still reach it: cached fixed-LSN reads may go on, head-relative
		// reads must fail, never answer a stale head.
		var victim int
		return fault{start: func(_ context.Context, c Cluster) (string, error) {
			ec, err := edgesOf(c)
			if err != nil {
				return "", err
			}
			victim = rng.IntN(ec.Edges())
			return fmt.Sprintf("isolate e%d from the nodes and the bucket", victim+1), ec.PartitionEdge(victim, true)
		}, stop: func(_ context.Context, c Cluster) error {
			ec, err := edgesOf(c)
			if err != nil {
				return err
			}
			return ec.PartitionEdge(victim, false)
		}}
	case "s3", "s3-blackhole", "s3-reset", "s3-slow", "s3-trickle", "s3-errors":
		return s3Fault(name, rng)
	case "pause-leader":
		return pauseLeaderFault(rng, opTimeout)
	case "rolling-restart":
		return rollingRestartFault(rng)
	case "slow-leader":
		return slowLeaderFault(rng)
	default:
		return fault{
			start: func(context.Context, Cluster) (string, error) { return "nothing", nil },
			stop:  func(context.Context, Cluster) error { return nil },
		}
	}
}

func others(n, x int) []int {
	var out []int
	for i := range n {
		if i != x {
			out = append(out, i)
		}
	}
	return out
}

func plus1(xs []int) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = x + 1
	}
	return out
}

func cutNames(cut [][2]int) string {
	var s []string
	for _, p := range cut {
		s = append(s, fmt.Sprintf("n%d->n%d", p[0]+1, p[1]+1))
	}
	return strings.Join(s, ",")
}

func joinErrs(errs []error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}
