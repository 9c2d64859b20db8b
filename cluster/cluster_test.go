package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func page(b byte) []byte { return bytes.Repeat([]byte{b}, volume.PageSize) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func follower(c *clustertest.Cluster) int {
	l := c.WaitLeader()
	return (l + 1) % len(c.Nodes)
}

func TestCluster_CommitAndRead(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	f := follower(c)
	cl := c.Client(f) // only a follower: commits must be forwarded
	vid := volume.MustNewID()

	s1, err := cl.Commit(ctx, vid, 0, 3, []volume.PageWrite{{Idx: 3, Data: page('c')}, {Idx: 1, Data: page('a')}})
	if err != nil {
		t.Fatalf("commit via follower: %v", err)
	}
	if s1.LSN != 1 || s1.PageCount != 3 || s1.VID != vid {
		t.Fatalf("snapshot %v", s1)
	}
	s2, err := cl.Commit(ctx, vid, 1, 3, []volume.PageWrite{{Idx: 1, Data: page('b')}})
	if err != nil || s2.LSN != 2 {
		t.Fatalf("second commit: %v %v", s2, err)
	}

	// Every node, at every consistency level that must see LSN 2, serves
	// the same bytes and versions.
	for i := range c.Nodes {
		nc := c.Client(i)
		for _, ro := range []client.ReadOptions{{}, {Consistency: client.AtLeastLSN, MinLSN: 2}} {
			snap, pages, err := nc.ReadPages(ctx, vid, 0, []volume.PageIdx{1, 2, 3}, ro)
			if err != nil {
				t.Fatalf("node %d read %+v: %v", i, ro, err)
			}
			if snap.LSN != 2 {
				t.Fatalf("node %d %+v: read at %v", i, ro, snap)
			}
			want := []struct {
				lsn  volume.LSN
				data []byte
			}{{2, page('b')}, {0, make([]byte, volume.PageSize)}, {1, page('c')}}
			for j, w := range want {
				if pages[j].LSN != w.lsn || !bytes.Equal(pages[j].Data, w.data) {
					t.Fatalf("node %d page %d: lsn %d", i, pages[j].Idx, pages[j].LSN)
				}
			}
		}
		// A read at LSN 1 is immutable history.
		_, pages, err := nc.ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: 1})
		if err != nil || pages[0].LSN != 1 || !bytes.Equal(pages[0].Data, page('a')) {
			t.Fatalf("node %d read at lsn 1: %+v %v", i, pages, err)
		}
	}

	snap, set, err := cl.PullGraft(ctx, vid, 0, 0, client.ReadOptions{})
	if err != nil || snap.LSN != 2 || !set.Equal(volume.NewPageSet(1, 3)) {
		t.Fatalf("graft: %v %v %v", snap, set.Slice(), err)
	}
	_, commits, more, err := cl.PullCommits(ctx, vid, 0, 0, 0, client.ReadOptions{})
	if err != nil || len(commits) != 2 || more || commits[1].LSN != 2 || !commits[1].Graft.Equal(volume.NewPageSet(1)) {
		t.Fatalf("commits: %+v %v", commits, err)
	}
	if commits[0].Hash != volume.CommitHash(vid, 1, 3, []volume.PageWrite{{Idx: 1, Data: page('a')}, {Idx: 3, Data: page('c')}}) {
		t.Fatal("commit hash does not match the data model's definition")
	}
}

func TestCluster_StaleBaseAndRetry(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	cl := c.Client(follower(c))
	vid := volume.MustNewID()
	pages := []volume.PageWrite{{Idx: 1, Data: page(1)}}
	first, err := cl.Commit(ctx, vid, 0, 1, pages)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("identical retry returns the original LSN", func(t *testing.T) {
		for i := range c.Nodes {
			again, err := c.Client(i).Commit(ctx, vid, 0, 1, pages)
			if err != nil || again != first {
				t.Fatalf("retry via node %d: %v %v", i, again, err)
			}
		}
	})
	if _, err := cl.Commit(ctx, vid, 1, 1, []volume.PageWrite{{Idx: 1, Data: page(2)}}); err != nil {
		t.Fatal(err)
	}
	t.Run("stale base is aborted with the head", func(t *testing.T) {
		_, err := cl.Commit(ctx, vid, 1, 1, []volume.PageWrite{{Idx: 1, Data: page(3)}})
		var ce *client.ConflictError
		if !errors.As(err, &ce) || ce.Head.LSN != 2 || connect.CodeOf(err) != connect.CodeAborted {
			t.Fatalf("got %v", err)
		}
		head, err := cl.Snapshot(ctx, vid, 0, client.ReadOptions{})
		if err != nil || head.LSN != 2 {
			t.Fatalf("head after rejection: %v %v", head, err)
		}
	})
	t.Run("a retry after the chain moved on is still recognized", func(t *testing.T) {
		again, err := cl.Commit(ctx, vid, 0, 1, pages)
		if err != nil || again != first {
			t.Fatalf("got %v %v", again, err)
		}
	})
}

func TestCluster_BadInput(t *testing.T) {
	c := clustertest.Start(t, 3, func(i int, cfg *cluster.Config) {
		cfg.Limits.MaxPagesPerCommit = 4
		cfg.Limits.MaxRequestBytes = 3 * volume.PageSize
	})
	ctx := testCtx(t)
	vid := volume.MustNewID().String()
	p := func(idx uint32, n int) *graftv1.Page { return &graftv1.Page{Idx: idx, Data: make([]byte, n)} }
	cases := []struct {
		name string
		req  *graftv1.CommitRequest
		want string
	}{
		{"short page", &graftv1.CommitRequest{Vid: vid, PageCount: 2, Pages: []*graftv1.Page{p(1, 4096), p(2, 100)}}, "pages[1] (idx 2): page is 100 bytes"},
		{"page index 0", &graftv1.CommitRequest{Vid: vid, PageCount: 2, Pages: []*graftv1.Page{p(0, 4096)}}, "idx 0"},
		{"duplicate", &graftv1.CommitRequest{Vid: vid, PageCount: 2, Pages: []*graftv1.Page{p(2, 4096), p(2, 4096)}}, "duplicate"},
		{"beyond page_count", &graftv1.CommitRequest{Vid: vid, PageCount: 2, Pages: []*graftv1.Page{p(3, 4096)}}, "beyond page_count 2"},
		{"malformed vid", &graftv1.CommitRequest{Vid: "not-a-volume", PageCount: 1}, "vid \"not-a-volume\""},
		{"empty vid", &graftv1.CommitRequest{PageCount: 1}, "vid \"\""},
		{"too many pages", &graftv1.CommitRequest{Vid: vid, PageCount: 9, Pages: []*graftv1.Page{p(1, 1), p(2, 1), p(3, 1), p(4, 1), p(5, 1)}}, "limit 4"},
		{"oversized request", &graftv1.CommitRequest{Vid: vid, PageCount: 4, Pages: []*graftv1.Page{p(1, 4096), p(2, 4096), p(3, 4096), p(4, 4096)}}, "limit 12288 (max request bytes)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range c.Nodes {
				_, err := c.Client(i).Volume(0).Commit(ctx, connect.NewRequest(tc.req))
				if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("node %d: got %v, want invalid_argument containing %q", i, err, tc.want)
				}
			}
		})
	}
	head, err := c.Client().Snapshot(ctx, volume.MustNewID(), 0, client.ReadOptions{})
	if err != nil || head.LSN != 0 {
		t.Fatalf("unknown volume head: %v %v", head, err)
	}
	t.Run("reads", func(t *testing.T) {
		vc := c.Client().Volume(0)
		for name, req := range map[string]*graftv1.ReadPagesRequest{
			"page 0":          {Vid: vid, Pages: []uint32{1, 0}},
			"duplicate":       {Vid: vid, Pages: []uint32{1, 1}},
			"bad vid":         {Vid: "x", Pages: []uint32{1}},
			"bad consistency": {Vid: vid, Pages: []uint32{1}, Consistency: 99},
		} {
			if _, err := vc.ReadPages(ctx, connect.NewRequest(req)); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("%s: got %v", name, err)
			}
		}
		if _, err := vc.ReadPages(ctx, connect.NewRequest(&graftv1.ReadPagesRequest{Vid: vid, Lsn: 5, Pages: []uint32{1}})); connect.CodeOf(err) != connect.CodeOutOfRange {
			t.Errorf("future lsn: got %v", err)
		}
	})
}

func TestCluster_LeaderFailover(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	cl := c.Client()
	vid := volume.MustNewID()
	var lsn volume.LSN
	commit := func(b byte) {
		t.Helper()
		s, err := cl.Commit(ctx, vid, lsn, 1, []volume.PageWrite{{Idx: 1, Data: page(b)}})
		if err != nil {
			t.Fatalf("commit %d: %v", b, err)
		}
		lsn = s.LSN
	}
	for b := range byte(5) {
		commit(b)
	}
	old := c.WaitLeader()
	c.Kill(old)
	newLeader := c.WaitLeader()
	if newLeader == old {
		t.Fatal("killed leader still leads")
	}
	for b := byte(5); b < 10; b++ {
		commit(b)
	}
	c.Restart(old)
	// The restarted node catches up and serves the whole chain.
	rc := c.Client(old)
	for l := volume.LSN(1); l <= lsn; l++ {
		_, pages, err := rc.ReadPages(ctx, vid, l, []volume.PageIdx{1}, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: lsn})
		if err != nil || !bytes.Equal(pages[0].Data, page(byte(l-1))) {
			t.Fatalf("restarted node, lsn %d: %v", l, err)
		}
	}
}

func TestCluster_LaggingFollowerRestoresSnapshot(t *testing.T) {
	c := clustertest.Start(t, 3, func(i int, cfg *cluster.Config) {
		cfg.Raft.SnapshotThreshold = 16
		cfg.Raft.SnapshotInterval = 50 * time.Millisecond
		cfg.Raft.TrailingLogs = 4
	})
	ctx := testCtx(t)
	lag := follower(c)
	c.Stop(lag)
	cl := c.Client()
	vids := []volume.ID{volume.MustNewID(), volume.MustNewID()}
	heads := map[volume.ID]volume.LSN{}
	for i := range 80 {
		vid := vids[i%2]
		s, err := cl.Commit(ctx, vid, heads[vid], 8, []volume.PageWrite{{Idx: volume.PageIdx(i%8 + 1), Data: page(byte(i))}})
		if err != nil {
			t.Fatal(err)
		}
		heads[vid] = s.LSN
	}
	// Wait until the leader has compacted its log past what the lagging
	// node has, so catching up needs a snapshot.
	leader := c.Nodes[c.WaitLeader()]
	deadline := time.Now().Add(20 * time.Second)
	for !snapshotted(leader) {
		if time.Now().After(deadline) {
			t.Fatal("leader never took a snapshot")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Restart(lag)
	lc := c.Client(lag)
	for _, vid := range vids {
		ro := client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: heads[vid]}
		for l := volume.LSN(1); l <= heads[vid]; l++ {
			want, _, err := cl.PullGraft(ctx, vid, l-1, l, client.ReadOptions{})
			got, _, err2 := lc.PullGraft(ctx, vid, l-1, l, ro)
			if err != nil || err2 != nil || want != got {
				t.Fatalf("lsn %d: leader %v %v, restored %v %v", l, want, err, got, err2)
			}
		}
		_, wantPages, _ := cl.ReadPages(ctx, vid, 0, []volume.PageIdx{1, 2, 3, 4, 5, 6, 7, 8}, client.ReadOptions{})
		_, gotPages, err := lc.ReadPages(ctx, vid, heads[vid], []volume.PageIdx{1, 2, 3, 4, 5, 6, 7, 8}, ro)
		if err != nil {
			t.Fatal(err)
		}
		for i := range wantPages {
			if wantPages[i].LSN != gotPages[i].LSN || !bytes.Equal(wantPages[i].Data, gotPages[i].Data) {
				t.Fatalf("page %d differs after restore", i+1)
			}
		}
	}
	if got, want := c.Nodes[lag].FSM().Applied(), uint64(0); got == want {
		t.Fatal("restored node applied nothing")
	}
}

// snapshotted reports whether a node's Raft log was compacted.
func snapshotted(n *cluster.Node) bool {
	return n.Stats()["last_snapshot_index"] != "0"
}

func TestCluster_StatusAndTransfer(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	old := c.WaitLeader()
	f := follower(c)
	cl := c.Client(f)
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, n := range st.GetNodes() {
		states[n.GetState()]++
	}
	if len(st.GetNodes()) != 3 || states["leader"] != 1 || states["follower"] != 2 || st.GetLeaderId() != c.Nodes[old].ID() {
		t.Fatalf("status: %v", st)
	}
	resp, err := cl.Cluster(0).TransferLeadership(ctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetLeaderId() == c.Nodes[old].ID() {
		t.Fatalf("leadership stayed on %s", resp.Msg.GetLeaderId())
	}
	// Commits keep working under the new leader.
	if _, err := cl.Commit(ctx, volume.MustNewID(), 0, 1, []volume.PageWrite{{Idx: 1, Data: page(1)}}); err != nil {
		t.Fatal(err)
	}
}

func TestCluster_WatchVolume(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	vid := volume.MustNewID()
	cl := c.Client()
	stream, err := c.Client(follower(c)).Volume(0).WatchVolume(ctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: vid.String()}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var lsn volume.LSN
	for i := range 3 {
		s, err := cl.Commit(ctx, vid, lsn, 1, []volume.PageWrite{{Idx: 1, Data: page(byte(i))}})
		if err != nil {
			t.Fatal(err)
		}
		lsn = s.LSN
	}
	if !stream.Receive() || stream.Msg().GetSnapshot().GetLsn() != 0 {
		t.Fatalf("first message is not the empty head: %v %v", stream.Msg(), stream.Err())
	}
	var seen volume.LSN
	for seen < lsn && stream.Receive() {
		got := volume.LSN(stream.Msg().GetSnapshot().GetLsn())
		if got <= seen {
			t.Fatalf("watch went backwards: %d after %d", got, seen)
		}
		seen = got
	}
	if seen != lsn {
		t.Fatalf("watch saw %d, want %d: %v", seen, lsn, stream.Err())
	}
}

// Close ends open WatchVolume streams (http.Server.Shutdown waits for
// handlers but never cancels their contexts): it returns without error,
// before the stream's own far deadline, and the stream ends with
// unavailable so the client reconnects elsewhere.
func TestNode_CloseEndsWatchStreams(t *testing.T) {
	c := clustertest.Start(t, 3)
	f := follower(c)
	sctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	stream, err := c.Client(f).Volume(0).WatchVolume(sctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: volume.MustNewID().String()}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("first message: %v", stream.Err())
	}
	ended := make(chan error, 1)
	go func() {
		for stream.Receive() {
		}
		ended <- stream.Err()
	}()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	err = c.Nodes[f].Close(cctx)
	c.Nodes[f] = nil
	if err != nil {
		t.Fatalf("close with an open watch stream: %v", err)
	}
	if sctx.Err() != nil {
		t.Fatal("the stream's own deadline passed before Close returned")
	}
	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatalf("watch stream of a closed node ended with %v, want unavailable", err)
		}
	case <-testCtx(t).Done():
		t.Fatal("watch stream still open after its node closed")
	}
}
