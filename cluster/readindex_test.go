package cluster_test

import (
	"context"
	"sync"
	"testing"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// transfer moves leadership from node from to node to and waits until to
// leads.
func transfer(t *testing.T, ctx context.Context, c *clustertest.Cluster, from, to int) error {
	t.Helper()
	_, err := c.Client(from).Cluster(0).TransferLeadership(ctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{Id: c.Nodes[to].ID()}))
	if err != nil {
		return err
	}
	waitFor(t, c.Nodes[to].IsLeader)
	return nil
}

// A leader takes the commit index in term T, then (the seam) loses
// leadership to a node that acknowledges a write, and wins term T+2 before
// it confirms leadership. Its VerifyLeader then succeeds, in T+2: the
// index it took in T must not be returned, since the write is above it.
func TestNode_ReadIndexAcrossElections(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	a := c.WaitLeader()
	b := (a + 1) % len(c.Nodes)
	var once sync.Once
	var writeIdx uint64
	var hookErr error
	c.Nodes[a].SetHooks(cluster.Hooks{AfterCommitIndex: func() {
		once.Do(func() {
			if hookErr = transfer(t, ctx, c, a, b); hookErr != nil {
				return
			}
			if _, hookErr = c.Client(b).Commit(ctx, volume.MustNewID(), 0, 1, []volume.PageWrite{{Idx: 1, Data: page(1)}}); hookErr != nil {
				return
			}
			// Everything b applied was committed before a's next term.
			writeIdx = c.Nodes[b].FSM().Applied()
			hookErr = transfer(t, ctx, c, b, a)
		})
	}})
	idx, err := c.Nodes[a].ReadIndex(ctx)
	if hookErr != nil {
		t.Fatalf("elections and write in the seam: %v", hookErr)
	}
	if writeIdx == 0 {
		t.Fatal("the seam did not run")
	}
	if err != nil {
		t.Fatalf("read index after the elections: %v", err)
	}
	if idx < writeIdx {
		t.Fatalf("read index %d is below the write acknowledged at index %d by the leader in between: a read at it misses that write", idx, writeIdx)
	}
}
