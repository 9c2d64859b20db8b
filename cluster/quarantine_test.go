package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// A new cluster on a bucket in which one volume's log record does not
// decode serves every other volume; the damaged one answers
// failed_precondition naming the object, for reads and commits.
func TestCluster_RecoverWithDamagedRecord(t *testing.T) {
	ctx := testCtx(t)
	c2, b, a, key := startOnDamagedBucket(t, ctx)
	cl2 := c2.Client(0, 1, 2)
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	snap, err := cl2.Snapshot(rctx, b.vid, 0, client.ReadOptions{})
	cancel()
	if err != nil || snap.LSN != b.head {
		t.Fatalf("volume B on a new cluster whose bucket has one damaged record: %v %v; want lsn %d", snap, err, b.head)
	}
	b.verify(t, ctx, cl2)
	b.commit(t, ctx, cl2)

	_, err = cl2.Snapshot(ctx, a, 0, client.ReadOptions{})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), key) {
		t.Fatalf("read of the damaged volume: %v; want failed_precondition naming %s", err, key)
	}
	_, err = cl2.Commit(ctx, a, 0, 1, []volume.PageWrite{{Idx: 1, Data: page(1)}})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), key) {
		t.Fatalf("commit to the damaged volume: %v; want failed_precondition naming %s", err, key)
	}
	st, err := cl2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q := st.GetQuarantined(); len(q) != 1 || q[0].GetVid() != a.String() || q[0].GetKey() != key || st.GetClusterId() == "" {
		t.Fatalf("status quarantined %v, cluster id %q", q, st.GetClusterId())
	}
}

// startOnDamagedBucket flushes three commits of volume B, stops the
// cluster, puts 40 bytes of garbage at volume A's first log key and starts
// a new cluster (empty Raft state) on that bucket: recovery adopts B and
// quarantines A without a head. It returns the new cluster, B, A and the
// damaged key.
func startOnDamagedBucket(t *testing.T, ctx context.Context) (*clustertest.Cluster, *chain, volume.ID, string) {
	t.Helper()
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url, 0))
	cl := c.Client(0, 1, 2)
	b := newChain()
	for range 3 {
		b.commit(t, ctx, cl)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		c.Stop(i)
	}
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := volume.MustNewID()
	key := segment.LogKey(a, 1)
	if err := store.Put(ctx, key, make([]byte, 40)); err != nil {
		t.Fatal(err)
	}
	return clustertest.Start(t, 3, withStore(url, 0)), b, a, key
}

// A volume that recovery quarantined has no head: WatchVolume answers the
// same failed_precondition as reads (it used to send head 0), and an
// at_least_lsn read fails at once with it (it used to wait for an LSN that
// cannot come until its deadline).
func TestCluster_RecoverWithDamagedRecordWatchAndWait(t *testing.T) {
	ctx := testCtx(t)
	c2, b, a, key := startOnDamagedBucket(t, ctx)
	cl2 := c2.Client(0, 1, 2)
	// Recovery is done once B reads.
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, err := cl2.Snapshot(rctx, b.vid, 0, client.ReadOptions{})
	cancel()
	if err != nil {
		t.Fatalf("volume B: %v", err)
	}
	want := func(what string, err error) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), key) {
			t.Errorf("%s of the volume quarantined by recovery: %v; want failed_precondition naming %s", what, err, key)
		}
	}
	for i := range c2.Nodes {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		stream, err := c2.Client(i).Volume(0).WatchVolume(sctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: a.String()}))
		if err == nil {
			if stream.Receive() {
				err = fmt.Errorf("first message %v", stream.Msg())
			} else {
				err = stream.Err()
			}
			_ = stream.Close()
		}
		cancel()
		want(fmt.Sprintf("node %d: watch", i), err)
	}
	// A deadline far beyond the test's patience: the read must fail on the
	// quarantine, not on the deadline.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = c2.Client(follower(c2)).Volume(0).GetSnapshot(wctx, connect.NewRequest(&graftv1.GetSnapshotRequest{
		Vid: a.String(), Consistency: graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN, MinLsn: 1,
	}))
	cancel()
	want("at_least_lsn read", err)
}

// One conflicting log record quarantines its volume; every other volume
// keeps flushing. The operator removes the object and lifts the quarantine.
func TestCluster_ConflictQuarantine(t *testing.T) {
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url, 20*time.Millisecond))
	ctx := testCtx(t)
	cl := c.Client(0, 1, 2)
	a, b := newChain(), newChain()
	a.commit(t, ctx, cl)
	b.commit(t, ctx, cl)
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := segment.LogKey(a.vid, 1)
	rec := segment.Record{VID: a.vid, From: 1, To: 1, Commits: []segment.RecordCommit{{LSN: 1, PageCount: 1, Hash: volume.Hash{1}}}}
	data, err := rec.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = cl.Flush(fctx)
	cancel()
	l := c.WaitLeader()
	if h := c.Nodes[l].FSM().History(b.vid); h.Flushed != b.head {
		t.Fatalf("B not flushed (history %+v, flush: %v): one conflicting volume blocks the others", h, err)
	}
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), key) {
		t.Fatalf("flush with A quarantined: %v; want failed_precondition naming %s", err, key)
	}
	for i := range c.Nodes {
		waitFor(t, func() bool { _, ok := c.Nodes[i].FSM().Quarantine(a.vid); return ok })
	}
	// B goes on; A's buffered commits read; A's commits are refused.
	for range 3 {
		b.commit(t, ctx, cl)
	}
	if err := cl.Flush(ctx); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("second flush with A quarantined: %v", err)
	}
	if h := c.Nodes[l].FSM().History(b.vid); h.Flushed != b.head {
		t.Fatalf("B history %+v, head %d", h, b.head)
	}
	a.verify(t, ctx, cl)
	_, err = cl.Commit(ctx, a.vid, a.head, chainPages, []volume.PageWrite{{Idx: 1, Data: page(7)}})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "unquarantine") {
		t.Fatalf("commit to quarantined A: %v; want failed_precondition naming %s and the way out", err, key)
	}
	st, err := cl.Status(ctx)
	if err != nil || len(st.GetQuarantined()) != 1 || st.GetQuarantined()[0].GetKey() != key {
		t.Fatalf("status: %v %v", st.GetQuarantined(), err)
	}
	// Lifting it while the object is still there is allowed but the next
	// round quarantines again; after removing the object it flushes.
	if err := store.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Cluster(follower(c)).Unquarantine(ctx, connect.NewRequest(&graftv1.UnquarantineRequest{Vid: a.vid.String()})); err != nil {
		t.Fatalf("unquarantine through a follower: %v", err)
	}
	if _, err := cl.Cluster(0).Unquarantine(ctx, connect.NewRequest(&graftv1.UnquarantineRequest{Vid: a.vid.String()})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("second unquarantine: %v; want failed_precondition", err)
	}
	a.commit(t, ctx, cl)
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush after unquarantine: %v", err)
	}
	if h := c.Nodes[l].FSM().History(a.vid); h.Flushed != a.head {
		t.Fatalf("A history after unquarantine %+v", h)
	}
	a.verify(t, ctx, cl)
}
