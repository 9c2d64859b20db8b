package cluster_test

import (
	"bytes"
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// Both log stores carry a cluster through commits, a leader crash and a
// restart from disk.
func TestCluster_LogStores(t *testing.T) {
	for _, store := range []string{cluster.LogStoreBolt, cluster.LogStoreWAL} {
		t.Run(store, func(t *testing.T) {
			c := clustertest.Start(t, 3, func(_ int, cfg *cluster.Config) { cfg.Raft.LogStore = store })
			ctx := testCtx(t)
			cl := c.Client(0, 1, 2)
			vid := volume.MustNewID()
			for i := range 20 {
				if _, err := cl.Commit(ctx, vid, volume.LSN(i), 2, []volume.PageWrite{{Idx: volume.PageIdx(1 + i%2), Data: page(byte(i))}}); err != nil {
					t.Fatalf("commit %d: %v", i, err)
				}
			}
			l := c.WaitLeader()
			c.Kill(l)
			c.WaitLeader()
			c.Restart(l)
			// The restarted node replays its log from disk and serves lsn 20.
			rc := c.Client(l)
			_, pages, err := rc.ReadPages(ctx, vid, 20, []volume.PageIdx{1, 2}, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: 20})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pages[1].Data, page(19)) || !bytes.Equal(pages[0].Data, page(18)) {
				t.Fatalf("restarted node serves versions %d, %d", pages[0].LSN, pages[1].LSN)
			}
		})
	}
}
