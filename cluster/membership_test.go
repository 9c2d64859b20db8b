package cluster_test

import (
	"context"
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

// AddNode is learner-first: a new member joins as a nonvoter and becomes a
// voter only once its log has caught up, so it never counts towards the
// quorum while it replays. A member that cannot catch up (here: not even
// running) stays a nonvoter, and the cluster keeps committing. Found by
// the consistency suite's membership nemesis (re-added node still
// replaying when the leader was removed: no working majority).
func TestCluster_AddNodeCatchesUpBeforeVoting(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	l := c.WaitLeader()
	f := (l + 1) % 3
	other := (l + 2) % 3
	cl := c.Client(l, other)
	id := c.Nodes[f].ID()
	if _, err := cl.Cluster(0).RemoveNode(ctx, connect.NewRequest(&graftv1.RemoveNodeRequest{Id: id})); err != nil {
		t.Fatalf("remove %s: %v", id, err)
	}
	c.Stop(f)

	vid := volume.MustNewID()
	var lsn volume.LSN
	commit := func(n int) {
		for range n {
			if _, err := cl.Commit(ctx, vid, lsn, 1, []volume.PageWrite{{Idx: 1, Data: page(byte(lsn))}}); err != nil {
				t.Fatalf("commit lsn %d: %v", lsn+1, err)
			}
			lsn++
		}
	}
	commit(20)

	add := &graftv1.AddNodeRequest{Id: id, RaftAddr: c.RaftAddr(f), ApiAddr: c.APIAddr(f)}
	suffrage := func() string {
		st, err := cl.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.GetNodes() {
			if n.GetId() == id {
				return n.GetSuffrage()
			}
		}
		return "absent"
	}

	// Not running: it cannot catch up, so it must not become a voter.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := cl.Cluster(0).AddNode(short, connect.NewRequest(add))
	cancel()
	if err == nil {
		t.Fatal("AddNode of a member that is down succeeded; want it to wait for catch-up and fail")
	}
	if got := suffrage(); got != "nonvoter" {
		t.Fatalf("member that never caught up has suffrage %q, want nonvoter", got)
	}
	commit(20) // two voters of two: still a quorum

	// Running with an empty data dir: AddNode returns once it has caught
	// up, and it is a voter with the whole log.
	c.Rejoin(f)
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var target uint64
	for _, n := range st.GetNodes() {
		if n.GetId() == st.GetLeaderId() {
			target = n.GetCommitIndex()
		}
	}
	if _, err := cl.Cluster(0).AddNode(ctx, connect.NewRequest(add)); err != nil {
		t.Fatalf("AddNode after rejoin: %v", err)
	}
	if got := suffrage(); got != "voter" {
		t.Fatalf("caught-up member has suffrage %q, want voter", got)
	}
	local, err := c.Client(f).Cluster(0).Status(ctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
	if err != nil {
		t.Fatal(err)
	}
	if got := local.Msg.GetNodes()[0].GetLastLogIndex(); got < target {
		t.Fatalf("new voter's last log index %d < leader commit index %d when AddNode was called", got, target)
	}
	commit(5)
}
