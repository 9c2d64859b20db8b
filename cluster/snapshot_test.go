package cluster_test

import (
	"testing"
	"time"

	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// With the entry-count trigger out of reach, the byte trigger alone makes
// every node snapshot once the applied log passes its threshold.
func TestNode_SnapshotThresholdBytes(t *testing.T) {
	c := clustertest.Start(t, 3, func(_ int, cfg *cluster.Config) {
		cfg.Raft.SnapshotThreshold = 1 << 30
		cfg.Raft.SnapshotInterval = time.Hour
		cfg.Raft.SnapshotThresholdBytes = 64 << 10
	})
	ctx := testCtx(t)
	cl := c.Client(0, 1, 2)
	vid := volume.MustNewID()
	for i := range 20 { // 20 x 4 KiB pages: past 64 KiB
		if _, err := cl.Commit(ctx, vid, volume.LSN(i), 1, []volume.PageWrite{{Idx: 1, Data: page(byte(i))}}); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for i, n := range c.Nodes {
		for n.Stats()["last_snapshot_index"] == "0" {
			if time.Now().After(deadline) {
				t.Fatalf("node %d took no snapshot: %v", i, n.Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
