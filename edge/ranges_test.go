package edge

import (
	"context"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func (te *testEdge) ranges(method, source string) float64 {
	return testutilCounter(te.metrics.ranges.WithLabelValues(method, source))
}

// TestEdge_RangeCache: PullGraft and PullCommits of a fixed range ending at
// or below a head the edge has seen are answered once by the cluster and
// then from the cache (also with the cluster down), equal to the cluster's
// answers; head-relative ones and ranges past every seen head always go
// upstream.
func TestEdge_RangeCache(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) {
		cfg.Upstream = c.Endpoints()
		cfg.UpstreamAttempts = 2
		cfg.UpstreamAttemptTimeout = time.Second
	})
	direct := c.Client()
	vid := volume.MustNewID()
	commitPages(t, ctx, direct, vid, 0, 4, 1, 2)
	commitPages(t, ctx, direct, vid, 1, 4, 3)
	head := commitPages(t, ctx, direct, vid, 2, 5, 2, 5)
	raw := te.client(t).Volume(0)
	graftReq := func(since, until uint64) *graftv1.PullGraftRequest {
		return &graftv1.PullGraftRequest{Vid: vid.String(), SinceLsn: since, UntilLsn: until}
	}

	// The edge has seen no head of vid: a fixed range is forwarded, not cached.
	if _, err := raw.PullGraft(ctx, connect.NewRequest(graftReq(1, 3))); err != nil {
		t.Fatal(err)
	}
	if n := te.ranges("PullGraft", sourceUpstream) + te.ranges("PullGraft", sourceCache); n != 0 {
		t.Fatalf("range cache used before any head was seen: %v", n)
	}
	// A head-relative PullGraft is forwarded (and names the head, which the
	// edge now knows exists); so is every later head-relative one.
	for range 2 {
		r, err := raw.PullGraft(ctx, connect.NewRequest(graftReq(1, 0)))
		if err != nil || r.Msg.GetSnapshot().GetLsn() != uint64(head) {
			t.Fatalf("head-relative graft: %v, %v", r, err)
		}
	}
	if n := te.ranges("PullGraft", sourceUpstream) + te.ranges("PullGraft", sourceCache); n != 0 {
		t.Fatalf("head-relative grafts went through the range cache: %v", n)
	}
	want := map[[2]uint64]*graftv1.PullGraftResponse{}
	for _, r := range [][2]uint64{{0, 3}, {1, 3}, {2, 3}, {3, 3}, {0, 1}} {
		w, err := direct.Volume(0).PullGraft(ctx, connect.NewRequest(&graftv1.PullGraftRequest{Vid: vid.String(), SinceLsn: r[0], UntilLsn: r[1],
			Consistency: graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN, MinLsn: r[1]}))
		if err != nil {
			t.Fatal(err)
		}
		want[r] = w.Msg
		for range 2 {
			got, err := raw.PullGraft(ctx, connect.NewRequest(graftReq(r[0], r[1])))
			if err != nil {
				t.Fatalf("graft %v: %v", r, err)
			}
			if !proto.Equal(got.Msg, w.Msg) {
				t.Fatalf("graft %v: edge %v, cluster %v", r, got.Msg, w.Msg)
			}
		}
	}
	if up, hit := te.ranges("PullGraft", sourceUpstream), te.ranges("PullGraft", sourceCache); up != 5 || hit != 5 {
		t.Fatalf("5 ranges read twice: %v upstream, %v cached; want 5 and 5", up, hit)
	}
	commitsWant := map[uint32]*graftv1.PullCommitsResponse{}
	for _, limit := range []uint32{0, 1, 2} {
		w, err := direct.Volume(0).PullCommits(ctx, connect.NewRequest(&graftv1.PullCommitsRequest{Vid: vid.String(), SinceLsn: 0, UntilLsn: 3, Limit: limit}))
		if err != nil {
			t.Fatal(err)
		}
		commitsWant[limit] = w.Msg
		for range 2 {
			got, err := raw.PullCommits(ctx, connect.NewRequest(&graftv1.PullCommitsRequest{Vid: vid.String(), SinceLsn: 0, UntilLsn: 3, Limit: limit}))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got.Msg, w.Msg) {
				t.Fatalf("commits (0, 3] limit %d: edge %v, cluster %v", limit, got.Msg, w.Msg)
			}
		}
	}
	if up, hit := te.ranges("PullCommits", sourceUpstream), te.ranges("PullCommits", sourceCache); up != 3 || hit != 3 {
		t.Fatalf("3 commit ranges read twice: %v upstream, %v cached", up, hit)
	}

	for i := range c.Nodes {
		c.Stop(i)
	}
	for r, w := range want {
		got, err := raw.PullGraft(ctx, connect.NewRequest(graftReq(r[0], r[1])))
		if err != nil || !proto.Equal(got.Msg, w) {
			t.Errorf("cached graft %v with the cluster down: %v, %v", r, got, err)
		}
	}
	got, err := raw.PullCommits(ctx, connect.NewRequest(&graftv1.PullCommitsRequest{Vid: vid.String(), UntilLsn: 3, Limit: 1}))
	if err != nil || !proto.Equal(got.Msg, commitsWant[1]) {
		t.Errorf("cached commits with the cluster down: %v, %v", got, err)
	}
	for name, r := range map[string][2]uint64{"head-relative": {0, 0}, "uncached": {1, 2}} {
		_, err := raw.PullGraft(ctx, connect.NewRequest(graftReq(r[0], r[1])))
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s graft with the cluster down: %v, want unavailable", name, err)
		}
	}
}

// badRangeUpstream is a fake cluster at head 3 of one volume that answers
// PullGraft and PullCommits wrongly while bad is set.
type badRangeUpstream struct {
	graftv1connect.UnimplementedVolumeServiceHandler
	vid   volume.ID
	bad   atomic.Int32 // 0: good; 1: wrong snapshot; 2: undecodable graft; 3: missing commit
	calls atomic.Int64
}

func (u *badRangeUpstream) GetSnapshot(context.Context, *connect.Request[graftv1.GetSnapshotRequest]) (*connect.Response[graftv1.GetSnapshotResponse], error) {
	return connect.NewResponse(&graftv1.GetSnapshotResponse{Snapshot: &graftv1.Snapshot{Vid: u.vid.String(), Lsn: 3, PageCount: 4}}), nil
}

func (u *badRangeUpstream) PullGraft(_ context.Context, req *connect.Request[graftv1.PullGraftRequest]) (*connect.Response[graftv1.PullGraftResponse], error) {
	u.calls.Add(1)
	set := volume.NewPageSet(1, 2)
	b, _ := set.MarshalBinary()
	lsn := req.Msg.GetUntilLsn()
	switch u.bad.Load() {
	case 1:
		lsn--
	case 2:
		b = []byte{1, 2, 3}
	}
	return connect.NewResponse(&graftv1.PullGraftResponse{Snapshot: &graftv1.Snapshot{Vid: u.vid.String(), Lsn: lsn, PageCount: 4}, Graft: b, Changed: []uint32{1, 2}}), nil
}

func (u *badRangeUpstream) PullCommits(_ context.Context, req *connect.Request[graftv1.PullCommitsRequest]) (*connect.Response[graftv1.PullCommitsResponse], error) {
	u.calls.Add(1)
	m := req.Msg
	b, _ := volume.NewPageSet(1).MarshalBinary()
	out := &graftv1.PullCommitsResponse{Snapshot: &graftv1.Snapshot{Vid: u.vid.String(), Lsn: m.GetUntilLsn(), PageCount: 4}}
	for lsn := m.GetSinceLsn() + 1; lsn <= m.GetUntilLsn(); lsn++ {
		if u.bad.Load() == 3 && lsn == m.GetSinceLsn()+1 {
			continue
		}
		out.Commits = append(out.Commits, &graftv1.CommitInfo{Lsn: lsn, PageCount: 4, Hash: make([]byte, 32), Graft: b})
	}
	return connect.NewResponse(out), nil
}

// TestEdge_RangeCacheRejectsBadAnswers: a malformed upstream answer about a
// range (another snapshot, an undecodable graft, a commit missing) is
// refused as unavailable and never cached: once the upstream answers well,
// the next request goes upstream and is cached.
func TestEdge_RangeCacheRejectsBadAnswers(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	up := &badRangeUpstream{vid: volume.MustNewID()}
	_, h := graftv1connect.NewVolumeServiceHandler(up)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = []string{srv.URL}; cfg.UpstreamAttempts = 1 })
	cl := te.client(t)
	if _, err := cl.Snapshot(ctx, up.vid, 0, client.ReadOptions{}); err != nil { // the edge learns head 3
		t.Fatal(err)
	}
	raw := cl.Volume(0)
	for _, bad := range []int32{1, 2} {
		up.bad.Store(bad)
		_, err := raw.PullGraft(ctx, connect.NewRequest(&graftv1.PullGraftRequest{Vid: up.vid.String(), SinceLsn: 1, UntilLsn: 3}))
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatalf("bad answer %d: %v, want unavailable", bad, err)
		}
	}
	up.bad.Store(3)
	if _, err := raw.PullCommits(ctx, connect.NewRequest(&graftv1.PullCommitsRequest{Vid: up.vid.String(), SinceLsn: 0, UntilLsn: 3})); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("commits with a hole: %v, want unavailable", err)
	}
	up.bad.Store(0)
	calls := up.calls.Load()
	for range 3 {
		r, err := raw.PullGraft(ctx, connect.NewRequest(&graftv1.PullGraftRequest{Vid: up.vid.String(), SinceLsn: 1, UntilLsn: 3}))
		if err != nil || !reflect.DeepEqual(r.Msg.GetChanged(), []uint32{1, 2}) {
			t.Fatalf("good graft: %v, %v", r, err)
		}
		if _, err := raw.PullCommits(ctx, connect.NewRequest(&graftv1.PullCommitsRequest{Vid: up.vid.String(), SinceLsn: 0, UntilLsn: 3})); err != nil {
			t.Fatalf("good commits: %v", err)
		}
	}
	if n := up.calls.Load() - calls; n != 2 {
		t.Fatalf("3 good graft and commit reads made %d upstream calls, want 2 (then cached)", n)
	}
	// Past the head the edge has seen: forwarded, and an answer about
	// another snapshot does not make the edge believe snapshot 9 exists.
	up.bad.Store(1)
	calls = up.calls.Load()
	for range 2 {
		if _, err := raw.PullGraft(ctx, connect.NewRequest(&graftv1.PullGraftRequest{Vid: up.vid.String(), SinceLsn: 1, UntilLsn: 9})); err != nil {
			t.Fatal(err)
		}
	}
	if n := up.calls.Load() - calls; n != 2 {
		t.Fatalf("2 grafts past the seen head made %d upstream calls, want 2", n)
	}
}

// TestEdge_ResolveByGraft: a snapshot read after an older one of the same
// volume resolves the pages the graft between does not hold from the
// older resolution, reading upstream only the pages in the graft (and
// those never resolved); a page beyond the newer snapshot's page count
// reads as zeros at version 0, and one brought back by a larger page count
// has its old version again — all as the cluster answers.
func TestEdge_ResolveByGraft(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	cl := te.client(t)
	direct := c.Client()
	vid := volume.MustNewID()
	all := []volume.PageIdx{1, 2, 3, 4}
	compare := func(lsn volume.LSN, idxs []volume.PageIdx) {
		t.Helper()
		snap, got, err := cl.ReadPages(ctx, vid, lsn, idxs, client.ReadOptions{})
		if err != nil {
			t.Fatalf("edge read @%d: %v", lsn, err)
		}
		wsnap, want, err := direct.ReadPages(ctx, vid, lsn, idxs, client.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if snap != wsnap || !reflect.DeepEqual(got, want) {
			t.Fatalf("read @%d: edge %+v %v, cluster %+v %v", lsn, snap, versions(got), wsnap, versions(want))
		}
	}
	commitPages(t, ctx, cl, vid, 0, 4, 1, 2, 3, 4)
	compare(1, all)
	commitPages(t, ctx, cl, vid, 1, 4, 2)
	commitPages(t, ctx, cl, vid, 2, 3, 1) // shrinks: page 4 is beyond the count at 3
	up, byGraft := te.pages(sourceUpstream), testutilCounter(te.metrics.graftResolved)
	compare(3, all)
	if n, g := te.pages(sourceUpstream)-up, testutilCounter(te.metrics.graftResolved)-byGraft; n != 2 || g != 2 {
		t.Fatalf("read @3 of 4 pages after @1 (graft {1,2}): %v pages upstream, %v resolved by graft; want 2 and 2", n, g)
	}
	commitPages(t, ctx, cl, vid, 3, 6, 5) // grows: page 4 is back, at its version 1
	up, byGraft = te.pages(sourceUpstream), testutilCounter(te.metrics.graftResolved)
	compare(4, []volume.PageIdx{3, 4, 6})
	if n, g := te.pages(sourceUpstream)-up, testutilCounter(te.metrics.graftResolved)-byGraft; n != 1 || g != 2 {
		t.Fatalf("read @4 of pages 3, 4, 6: %v pages upstream, %v resolved by graft; want 1 (page 6) and 2", n, g)
	}
	if hit := te.ranges("PullGraft", sourceUpstream); hit != 2 {
		t.Fatalf("%v grafts fetched, want 2", hit)
	}
}

func versions(ps []client.Page) []volume.LSN {
	out := make([]volume.LSN, len(ps))
	for i, p := range ps {
		out[i] = p.LSN
	}
	return out
}
