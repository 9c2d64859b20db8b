package cluster_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/volume"
)

// Checkpoints, retention and GC in a real cluster: snapshots at or above
// the horizon read right on every node, older ones answer out_of_range
// naming the oldest readable lsn, a graft across the horizon is the whole
// page set; then the volume is deleted and answers not_found.
func TestCluster_RetentionAndDelete(t *testing.T) {
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url, 20*time.Millisecond), func(_ int, cfg *cluster.Config) {
		cfg.Flush.CheckpointRecords, cfg.Flush.CheckpointBytes = 2, 0
		cfg.Flush.RetainLSNs = 6
		cfg.Flush.GCInterval, cfg.Flush.GCGrace = 20*time.Millisecond, 0
	})
	ctx := testCtx(t)
	cl := c.Client(0, 1, 2)
	ch := newChain()
	for range 4 {
		for range 5 {
			ch.commit(t, ctx, cl)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l := c.WaitLeader()
	var hz volume.LSN
	// Wait until checkpoints and GC are done with what was committed: no
	// checkpoint due, the horizon at min(head - 6, checkpoint), no GC open.
	waitFor(t, func() bool {
		f := c.Nodes[l].FSM()
		h, st := f.History(ch.vid), f.CheckpointStats(ch.vid)
		hz = h.Horizon
		return st.Records < 2 && hz == min(ch.head-6, h.Checkpoint) && hz > 1 && f.GC() == nil
	})
	idxs := []volume.PageIdx{1, 2, 3, 4, 5, 6}
	for i := range c.Nodes {
		one := c.Client(i)
		ro := client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: ch.head}
		for lsn := hz; lsn <= ch.head; lsn++ {
			_, pages, err := one.ReadPages(ctx, ch.vid, lsn, idxs, ro)
			if err != nil {
				t.Fatalf("node %d: read %d (horizon %d): %v", i, lsn, hz, err)
			}
			for _, p := range pages {
				want := ch.images[lsn][p.Idx]
				if want == nil {
					want = volume.ZeroPage()
				}
				if !bytes.Equal(p.Data, want) {
					t.Fatalf("node %d: %s@%d page %d: wrong bytes", i, ch.vid, lsn, p.Idx)
				}
			}
		}
		// Linearizable: the node has applied the GC round.
		_, _, err := one.ReadPages(ctx, ch.vid, hz-1, idxs, client.ReadOptions{Consistency: client.Linearizable})
		if connect.CodeOf(err) != connect.CodeOutOfRange || !strings.Contains(err.Error(), "oldest readable lsn") {
			t.Fatalf("node %d: read below the horizon: %v", i, err)
		}
		_, set, err := one.PullGraft(ctx, ch.vid, 0, ch.head, ro)
		if err != nil || set.Len() != chainPages {
			t.Fatalf("node %d: graft across the horizon: %d pages, %v", i, set.Len(), err)
		}
	}

	// A commit on a base whose next lsn is below the horizon: the log record
	// that would tell a retry from a stale commit is collected, so the
	// outcome is unknowable. The answer must say so and be final
	// (out_of_range, which clients do not retry), not unavailable, which
	// clients retry forever with the same content.
	_, err := cl.Commit(ctx, ch.vid, hz-2, chainPages, []volume.PageWrite{{Idx: 1, Data: page(99)}})
	if connect.CodeOf(err) != connect.CodeOutOfRange || !strings.Contains(err.Error(), "can no longer be told") ||
		!strings.Contains(err.Error(), "oldest readable lsn") {
		t.Fatalf("commit on base %d below the horizon %d: %v", hz-2, hz, err)
	}

	if err := cl.DeleteVolume(ctx, ch.vid); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteVolume(ctx, ch.vid); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	for i := range c.Nodes {
		one := c.Client(i)
		ro := client.ReadOptions{Consistency: client.Linearizable}
		if _, err := one.Snapshot(ctx, ch.vid, 0, ro); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("node %d: read after delete: %v", i, err)
		}
	}
	_, err = cl.Commit(ctx, ch.vid, ch.head, chainPages, []volume.PageWrite{{Idx: 1, Data: page(1)}})
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("commit after delete: %v", err)
	}
	waitFor(t, func() bool {
		tb, ok := c.Nodes[l].FSM().Deleted(ch.vid)
		return ok && tb.Purged
	})
}
