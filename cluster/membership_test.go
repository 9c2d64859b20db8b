package cluster_test

import (
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// Removing the leader: the others elect a new one and keep committing, and
// the removed node notices that its Raft stopped (Removed closes, /readyz
// answers 503) instead of lingering as a zombie that still answers. Found
// by the consistency suite's membership nemesis.
func TestCluster_RemoveLeader(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	l := c.WaitLeader()
	old := c.Nodes[l]
	f := (l + 1) % 3
	if _, err := c.Client(f).Cluster(0).RemoveNode(ctx, connect.NewRequest(&graftv1.RemoveNodeRequest{Id: old.ID()})); err != nil {
		t.Fatalf("remove leader %s: %v", old.ID(), err)
	}
	select {
	case <-old.Removed():
	case <-time.After(20 * time.Second):
		t.Fatal("removed leader did not notice its removal")
	}
	resp, err := http.Get("http://" + old.APIAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("removed node's /readyz = %d, want 503", resp.StatusCode)
	}
	// The remaining two commit on.
	cl := c.Client(f, (f+1)%3)
	if _, err := cl.Commit(ctx, volume.MustNewID(), 0, 1, []volume.PageWrite{{Idx: 1, Data: page('r')}}); err != nil {
		t.Fatalf("commit after removing the leader: %v", err)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetNodes()) != 2 || st.GetLeaderId() == old.ID() {
		t.Fatalf("status after removal: %v", st)
	}
}
