package cluster_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
)

// The first leader fences the bucket to the cluster; a leader that finds
// the bucket fenced to another cluster neither flushes nor collects there,
// and says so in Status and in Flush's error.
func TestCluster_ForeignBucket(t *testing.T) {
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url, 0))
	ctx := testCtx(t)
	cl := c.Client(0, 1, 2)
	ch := newChain()
	ch.commit(t, ctx, cl)
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	id, err := flusher.ReadIdentity(ctx, store)
	st, serr := cl.Status(ctx)
	if err != nil || serr != nil || id == "" || st.GetClusterId() != id {
		t.Fatalf("bucket identity %q (%v), status cluster id %q (%v)", id, err, st.GetClusterId(), serr)
	}
	// Another cluster takes the prefix over; our next leader refuses it.
	if err := store.Put(ctx, flusher.IdentityKey, []byte("graft cluster someone-else\n")); err != nil {
		t.Fatal(err)
	}
	l := c.WaitLeader()
	if _, err := c.Client(l).Cluster(0).TransferLeadership(ctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{})); err != nil {
		t.Fatal(err)
	}
	nl := c.WaitLeader()
	waitFor(t, func() bool {
		st, err := c.Client(nl).Cluster(0).Status(ctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
		return err == nil && strings.Contains(st.Msg.GetNodes()[0].GetObjectStoreError(), "another cluster")
	})
	ch.commit(t, ctx, cl)
	err = cl.Flush(ctx)
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "someone-else") {
		t.Fatalf("flush into a foreign bucket: %v; want failed_precondition naming the owner", err)
	}
	if h := c.Nodes[nl].FSM().History(ch.vid); h.Flushed != 1 {
		t.Fatalf("history %+v: the fenced leader flushed", h)
	}
	if got, _ := flusher.ReadIdentity(ctx, store); got != "someone-else" {
		t.Fatalf("identity object now %q", got)
	}
}
