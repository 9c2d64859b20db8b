package harness_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/harness"
	"github.com/graft-cluster/graft/jepsen/proxy"
	"github.com/graft-cluster/graft/volume"
)

// Edges start in front of the client proxies, serve reads of what the
// nodes committed, lose their upstream when the client proxies are cut,
// are cut off, killed and restarted by PartitionEdge, KillEdge and
// RestartEdge, and are stopped (their process gone) by Stop.
func TestCluster_Edges(t *testing.T) {
	cfg := testConfig(t)
	cfg.Edges = 2
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := harness.Start(ctx, cfg)
	if err != nil {
		dumpLogs(t, cfg.Dir)
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer scancel()
			_ = c.Stop(sctx)
		}
		if t.Failed() {
			dumpLogs(t, cfg.Dir)
		}
	})
	if c.Edges() != 2 || len(c.EdgeEndpoints()) != 2 {
		t.Fatalf("Edges = %d, endpoints %v, want 2", c.Edges(), c.EdgeEndpoints())
	}
	vid := volume.MustNewID()
	commit(t, newClient(t, c.ClientEndpoints()...), vid, 0, "through the nodes")
	var pids []int
	for i, ep := range c.EdgeEndpoints() {
		pid := c.EdgePID(i)
		if pid == 0 || c.EdgeLogPath(i) == "" {
			t.Fatalf("edge %d: PID %d, log %q", i, pid, c.EdgeLogPath(i))
		}
		pids = append(pids, pid)
		_, pages, err := newClient(t, ep).ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: 1})
		if err != nil || len(pages) != 1 || string(pages[0].Data[:len("through the nodes")]) != "through the nodes" {
			t.Fatalf("read through edge %d: %v, %v", i, pages, err)
		}
	}

	// PartitionEdge cuts one edge off the nodes: its head reads fail, its
	// cached fixed read still answers, the other edge is untouched.
	must(t, c.PartitionEdge(0, true))
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = oneShot(t, c.EdgeEndpoints()[0]).Snapshot(rctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable})
	rcancel()
	if err == nil {
		t.Fatalf("head read through a partitioned edge succeeded")
	}
	if _, pages, err := oneShot(t, c.EdgeEndpoints()[0]).ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{}); err != nil || pages[0].LSN != 1 {
		t.Fatalf("cached read through a partitioned edge: %v, %v", pages, err)
	}
	// newClient (with retries): a loaded machine may be between leaders.
	if _, err := newClient(t, c.EdgeEndpoints()[1]).Snapshot(ctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable}); err != nil {
		t.Fatalf("head read through the other edge: %v", err)
	}
	must(t, c.PartitionEdge(0, false))
	if _, err := newClient(t, c.EdgeEndpoints()[0]).Snapshot(ctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable}); err != nil {
		t.Fatalf("head read through the healed edge: %v", err)
	}
	// KillEdge and RestartEdge: a new process on the same address, an
	// expected exit (not in UnexpectedExits, checked below).
	must(t, c.KillEdge(1))
	if c.EdgePID(1) != 0 || !errors.Is(c.KillEdge(1), harness.ErrNotRunning) {
		t.Fatalf("killed edge: PID %d", c.EdgePID(1))
	}
	must(t, c.RestartEdge(1))
	if pid := c.EdgePID(1); pid == 0 || pid == pids[1] {
		t.Fatalf("restarted edge: PID %d (was %d)", pid, pids[1])
	}
	pids[1] = c.EdgePID(1)
	must(t, c.RestartEdge(1)) // running: a no-op
	if _, pages, err := newClient(t, c.EdgeEndpoints()[1]).ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: 1}); err != nil || pages[0].LSN != 1 {
		t.Fatalf("read through the restarted edge: %v, %v", pages, err)
	}

	// The edges' upstream is the client proxies: cut them all, and a
	// head read through an edge cannot be answered.
	for i := range c.Nodes() {
		must(t, c.SetClientLink(i, proxy.Drop))
	}
	rctx, rcancel = context.WithTimeout(ctx, 3*time.Second)
	_, err = oneShot(t, c.EdgeEndpoints()[0]).Snapshot(rctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable})
	rcancel()
	if err == nil {
		t.Fatalf("head read through an edge with every client link cut succeeded")
	}
	t.Logf("edge with its upstream cut answered: %v", err)
	for i := range c.Nodes() {
		must(t, c.SetClientLink(i, proxy.Pass))
	}

	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	stopped = true
	if err := c.Stop(sctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("edge %d (pid %d) after Stop: kill 0 = %v, want ESRCH", i, pid, err)
		}
		if c.EdgePID(i) != 0 {
			t.Errorf("edge %d: PID %d after Stop", i, c.EdgePID(i))
		}
	}
	for _, e := range c.UnexpectedExits() {
		t.Errorf("unexpected exit: %+v", e)
	}
	checkNoRaces(t, c)
	for i := range c.Edges() {
		b, err := os.ReadFile(c.EdgeLogPath(i))
		if err != nil {
			t.Errorf("read edge log: %v", err)
		} else if bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("%s reports a data race", c.EdgeLogPath(i))
		}
	}
}
