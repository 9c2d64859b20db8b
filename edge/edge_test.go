package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func TestCheckRead(t *testing.T) {
	vid := volume.MustNewID()
	page := fill(0, 2, 1)
	snap := volume.Snapshot{VID: vid, LSN: 5, PageCount: 3}
	good := func() []pageVersion {
		return []pageVersion{{idx: 1, ver: 2, data: page}, {idx: 4, ver: 0, data: zeroPage}}
	}
	if err := checkRead(vid, 5, []volume.PageIdx{1, 4}, snap, good()); err != nil {
		t.Fatalf("good answer rejected: %v", err)
	}
	for name, tc := range map[string]struct {
		snap  volume.Snapshot
		idxs  []volume.PageIdx
		edit  func(p []pageVersion)
		wants string
	}{
		"other snapshot":      {snap: volume.Snapshot{VID: vid, LSN: 4, PageCount: 3}, wants: "asked for snapshot"},
		"other volume":        {snap: volume.Snapshot{VID: volume.MustNewID(), LSN: 5, PageCount: 3}, wants: "asked for snapshot"},
		"fewer pages":         {idxs: []volume.PageIdx{1, 4, 2}, wants: "asked for 3 pages"},
		"other page":          {idxs: []volume.PageIdx{2, 4}, wants: "is page 1, want 2"},
		"future version":      {edit: func(p []pageVersion) { p[0].ver = 6 }, wants: "past the snapshot"},
		"beyond page count":   {edit: func(p []pageVersion) { p[1].ver = 3; p[1].data = page }, wants: "beyond page count"},
		"short page":          {edit: func(p []pageVersion) { p[0].data = page[:100] }, wants: "is 100 bytes"},
		"zero version, bytes": {edit: func(p []pageVersion) { p[1].data = page }, wants: "never-written page 4 has data"},
	} {
		t.Run(name, func(t *testing.T) {
			s, idxs, pages := snap, []volume.PageIdx{1, 4}, good()
			if tc.snap.LSN != 0 {
				s = tc.snap
			}
			if tc.idxs != nil {
				idxs = tc.idxs
			}
			if tc.edit != nil {
				tc.edit(pages)
			}
			err := checkRead(vid, 5, idxs, s, pages)
			if !errors.Is(err, ErrBadUpstream) || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("checkRead = %v, want ErrBadUpstream saying %q", err, tc.wants)
			}
		})
	}
}

// commitPages commits pages to vid on base through cl and returns the new
// head.
func commitPages(t *testing.T, ctx context.Context, cl *client.Client, vid volume.ID, base volume.LSN, count uint32, idxs ...volume.PageIdx) volume.LSN {
	t.Helper()
	var w []volume.PageWrite
	for _, idx := range idxs {
		w = append(w, volume.PageWrite{Idx: idx, Data: fill(1, base+1, idx)})
	}
	snap, err := cl.Commit(ctx, vid, base, count, w)
	if err != nil {
		t.Fatalf("commit on %d: %v", base, err)
	}
	return snap.LSN
}

// TestEdge_SharedVersions shows the cache keys at work: snapshots that
// share a page version share its bytes, and a snapshot read once is read
// again without upstream.
func TestEdge_SharedVersions(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	cl := te.client(t)
	vid := volume.MustNewID()
	commitPages(t, ctx, cl, vid, 0, 4, 1, 2)
	commitPages(t, ctx, cl, vid, 1, 4, 2)
	commitPages(t, ctx, cl, vid, 2, 4, 3) // page 1: version 1 at lsn 1..3

	for lsn := volume.LSN(1); lsn <= 3; lsn++ {
		_, pages, err := cl.ReadPages(ctx, vid, lsn, []volume.PageIdx{1}, client.ReadOptions{})
		if err != nil || pages[0].LSN != 1 {
			t.Fatalf("read page 1 at %d: %+v, %v", lsn, pages, err)
		}
	}
	te.Edge.pages.CleanUp()
	if n := te.Edge.pages.EstimatedSize(); n != 1 {
		t.Fatalf("page cache holds %d entries after reading one version at three snapshots, want 1", n)
	}
	// Snapshots 2 and 3 were resolved from snapshot 1 and the grafts
	// between (page 1 is in neither): one page read upstream in all.
	up, cached := te.pages(sourceUpstream), te.pages(sourceCache)
	if up != 1 || cached != 2 {
		t.Fatalf("page 1 read at three snapshots: %v pages upstream, %v from the cache; want 1 and 2", up, cached)
	}
	_, _, err := cl.ReadPages(ctx, vid, 2, []volume.PageIdx{1}, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if te.pages(sourceUpstream) != up || te.pages(sourceCache) != cached+1 {
		t.Fatalf("re-read of a cached snapshot: upstream %v -> %v, cache %v -> %v", up, te.pages(sourceUpstream), cached, te.pages(sourceCache))
	}
}

// call runs one raw request against an endpoint and returns its error.
type call func(ctx context.Context, v graftv1connect.VolumeServiceClient) error

func badInputs(vid volume.ID) map[string]call {
	many := make([]uint32, 1025)
	for i := range many {
		many[i] = uint32(i + 1)
	}
	read := func(m *graftv1.ReadPagesRequest) call {
		return func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.ReadPages(ctx, connect.NewRequest(m))
			return err
		}
	}
	return map[string]call{
		"read empty vid":       read(&graftv1.ReadPagesRequest{Pages: []uint32{1}}),
		"read bad vid":         read(&graftv1.ReadPagesRequest{Vid: "nope", Pages: []uint32{1}}),
		"read page 0":          read(&graftv1.ReadPagesRequest{Vid: vid.String(), Pages: []uint32{3, 0}}),
		"read duplicate":       read(&graftv1.ReadPagesRequest{Vid: vid.String(), Pages: []uint32{3, 4, 3}}),
		"read too many":        read(&graftv1.ReadPagesRequest{Vid: vid.String(), Pages: many}),
		"read bad consistency": read(&graftv1.ReadPagesRequest{Vid: vid.String(), Pages: []uint32{1}, Consistency: 9}),
		"snapshot bad vid": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.GetSnapshot(ctx, connect.NewRequest(&graftv1.GetSnapshotRequest{Vid: "x"}))
			return err
		},
		"snapshot bad consistency": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.GetSnapshot(ctx, connect.NewRequest(&graftv1.GetSnapshotRequest{Vid: vid.String(), Consistency: 7}))
			return err
		},
		"graft inverted range": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.PullGraft(ctx, connect.NewRequest(&graftv1.PullGraftRequest{Vid: vid.String(), SinceLsn: 5, UntilLsn: 2}))
			return err
		},
		"commits inverted range": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.PullCommits(ctx, connect.NewRequest(&graftv1.PullCommitsRequest{Vid: vid.String(), SinceLsn: 5, UntilLsn: 2}))
			return err
		},
		"commit bad vid": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.Commit(ctx, connect.NewRequest(&graftv1.CommitRequest{Vid: "bad", PageCount: 1}))
			return err
		},
		"watch bad vid": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			s, err := v.WatchVolume(ctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: "bad"}))
			if err != nil {
				return err
			}
			defer s.Close()
			for s.Receive() {
			}
			return s.Err()
		},
	}
}

// upstreamInputs are rejected by the cluster only; the edge passes the
// answer through.
func upstreamInputs(vid volume.ID) map[string]call {
	return map[string]call{
		"commit page 0": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.Commit(ctx, connect.NewRequest(&graftv1.CommitRequest{Vid: vid.String(), PageCount: 2, Pages: []*graftv1.Page{{Idx: 0, Data: make([]byte, volume.PageSize)}}}))
			return err
		},
		"commit short page": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.Commit(ctx, connect.NewRequest(&graftv1.CommitRequest{Vid: vid.String(), PageCount: 2, Pages: []*graftv1.Page{{Idx: 1, Data: []byte("short")}}}))
			return err
		},
		"read future lsn": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.ReadPages(ctx, connect.NewRequest(&graftv1.ReadPagesRequest{Vid: vid.String(), Lsn: 99, Pages: []uint32{1}}))
			return err
		},
		"snapshot future lsn": func(ctx context.Context, v graftv1connect.VolumeServiceClient) error {
			_, err := v.GetSnapshot(ctx, connect.NewRequest(&graftv1.GetSnapshotRequest{Vid: vid.String(), Lsn: 99}))
			return err
		},
	}
}

// TestEdge_BadInputParity sends bad requests to a node and to the edge:
// both answer the same code and message. Those the edge can judge alone it
// answers with its upstream dead.
func TestEdge_BadInputParity(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	dead := startEdge(t, func(cfg *Config) { cfg.Upstream = []string{"http://127.0.0.1:1"}; cfg.UpstreamAttempts = 1 })
	node := graftv1connect.NewVolumeServiceClient(http.DefaultClient, c.Endpoint(c.WaitLeader()))
	viaEdge := graftv1connect.NewVolumeServiceClient(http.DefaultClient, te.URL)
	viaDead := graftv1connect.NewVolumeServiceClient(http.DefaultClient, dead.URL)
	vid := volume.MustNewID()
	commitPages(t, ctx, te.client(t), vid, 0, 2, 1)

	check := func(name string, fn call, edges ...graftv1connect.VolumeServiceClient) {
		want := fn(ctx, node)
		var wce *connect.Error
		if !errors.As(want, &wce) {
			t.Fatalf("%s: cluster answered %v, want an error", name, want)
		}
		for i, v := range edges {
			got := fn(ctx, v)
			var gce *connect.Error
			if !errors.As(got, &gce) || gce.Code() != wce.Code() || gce.Message() != wce.Message() {
				t.Errorf("%s: edge %d answered %v; cluster %v", name, i, got, want)
			}
		}
	}
	for name, fn := range badInputs(vid) {
		check(name, fn, viaEdge, viaDead)
	}
	for name, fn := range upstreamInputs(vid) {
		check(name, fn, viaEdge)
	}
}

// TestEdge_CommitConflict: a stale commit through the edge gets the
// cluster's aborted error with its CommitConflict detail.
func TestEdge_CommitConflict(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	cl := te.client(t)
	vid := volume.MustNewID()
	commitPages(t, ctx, cl, vid, 0, 2, 1)
	commitPages(t, ctx, cl, vid, 1, 2, 2)

	_, err := cl.Commit(ctx, vid, 1, 2, []volume.PageWrite{{Idx: 1, Data: fill(9, 9, 1)}})
	var ce *client.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("stale commit through the edge: %v, want a conflict", err)
	}
	if ce.Head.LSN != 2 || ce.Head.VID != vid {
		t.Fatalf("conflict head %+v, want %s@2 (from the CommitConflict detail)", ce.Head, vid)
	}
	_, direct := c.Client().Commit(ctx, vid, 1, 2, []volume.PageWrite{{Idx: 1, Data: fill(9, 9, 1)}})
	var dce *connect.Error
	if !errors.As(direct, &dce) || !strings.Contains(err.Error(), dce.Message()) {
		t.Fatalf("edge said %v; cluster %v", err, direct)
	}
	// A retried commit (same content on the same base) gets its original ack.
	w := []volume.PageWrite{{Idx: 2, Data: fill(1, 3, 2)}}
	first, err := cl.Commit(ctx, vid, 2, 2, w)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cl.Commit(ctx, vid, 2, 2, w)
	if err != nil || again != first {
		t.Fatalf("retried commit: %+v, %v; first ack %+v", again, err, first)
	}
}

// TestEdge_UpstreamDown: with every node gone, snapshots the edge has
// read keep being served; head-relative reads and uncached pages answer
// unavailable.
func TestEdge_UpstreamDown(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) {
		cfg.Upstream = c.Endpoints()
		cfg.UpstreamAttempts = 2
		cfg.UpstreamAttemptTimeout = time.Second
	})
	cl := te.client(t)
	vid := volume.MustNewID()
	commitPages(t, ctx, cl, vid, 0, 3, 1, 2)
	head := commitPages(t, ctx, cl, vid, 1, 3, 2)
	_, warm, err := cl.ReadPages(ctx, vid, head, []volume.PageIdx{1, 2}, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		c.Stop(i)
	}
	up := te.pages(sourceUpstream)
	snap, got, err := cl.ReadPages(ctx, vid, head, []volume.PageIdx{2, 1}, client.ReadOptions{})
	if err != nil {
		t.Fatalf("cached read with the cluster down: %v", err)
	}
	if snap.LSN != head || got[0].LSN != warm[1].LSN || string(got[1].Data) != string(warm[0].Data) || te.pages(sourceUpstream) != up {
		t.Fatalf("cached read: %+v %+v (upstream pages %v -> %v)", snap, got, up, te.pages(sourceUpstream))
	}
	if s, err := cl.Snapshot(ctx, vid, head, client.ReadOptions{}); err != nil || s.PageCount != 3 {
		t.Fatalf("cached snapshot: %+v, %v", s, err)
	}
	for name, lsn := range map[string]volume.LSN{"head": 0, "uncached": head - 1} {
		_, _, err := cl.ReadPages(ctx, vid, lsn, []volume.PageIdx{1}, client.ReadOptions{})
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s read with the cluster down: %v, want unavailable", name, err)
		}
	}
	resp, err := http.Get(te.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the cluster down: %d", resp.StatusCode)
	}
}

// TestEdge_Watch: two subscribers of one volume share one upstream stream
// and both see the heads.
func TestEdge_Watch(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	cl := te.client(t)
	vid := volume.MustNewID()
	commitPages(t, ctx, cl, vid, 0, 2, 1)
	v := graftv1connect.NewVolumeServiceClient(http.DefaultClient, te.URL)
	var streams []*connect.ServerStreamForClient[graftv1.WatchVolumeResponse]
	for range 2 {
		s, err := v.WatchVolume(ctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: vid.String()}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		// The first message is the serving node's head at once: a
		// follower may not have applied commit 1 yet.
		if !s.Receive() || s.Msg().GetSnapshot().GetLsn() > 1 {
			t.Fatalf("first watch message: %v %v", s.Msg(), s.Err())
		}
		streams = append(streams, s)
	}
	if n := testutilGauge(te.metrics.watchStreams); n != 1 {
		t.Fatalf("%v upstream watch streams for two subscribers of one volume", n)
	}
	commitPages(t, ctx, cl, vid, 1, 2, 2)
	for i, s := range streams {
		last := s.Msg().GetSnapshot().GetLsn()
		for last < 2 {
			if !s.Receive() {
				t.Fatalf("subscriber %d ended before head 2: %v", i, s.Err())
			}
			lsn := s.Msg().GetSnapshot().GetLsn()
			if lsn <= last {
				t.Fatalf("subscriber %d got head %d after %d", i, lsn, last)
			}
			last = lsn
		}
	}
}

// TestEdge_ETag: a fixed-LSN ReadPages over GET is immutable, has a strong
// ETag, and If-None-Match gets 304; a head read is neither.
func TestEdge_ETag(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	vid := volume.MustNewID()
	head := commitPages(t, ctx, te.client(t), vid, 0, 2, 1)

	get := func(lsn volume.LSN, inm string) (*http.Response, []byte) {
		u := readURL(te.URL, vid, lsn, 1, 2)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get(head, "")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != immutableCacheControl(false) || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("fixed GET: %d %q etag %q: %s", resp.StatusCode, resp.Header.Get("Cache-Control"), etag, body)
	}
	if resp, _ := get(head, etag); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
	}
	if resp, _ := get(head, `"other"`); resp.StatusCode != 200 {
		t.Fatalf("If-None-Match other: %d", resp.StatusCode)
	}
	if resp, _ := get(0, ""); resp.StatusCode != 200 || resp.Header.Get("ETag") != "" || resp.Header.Get("Cache-Control") != "" {
		t.Fatalf("head GET: %d etag %q cache-control %q", resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
	}
}

// readURL is the Connect GET URL of a JSON ReadPages request.
func readURL(base string, vid volume.ID, lsn volume.LSN, pages ...uint32) string {
	var ps []string
	for _, p := range pages {
		ps = append(ps, itoa(uint64(p)))
	}
	msg := `{"vid":"` + vid.String() + `","lsn":"` + itoa(uint64(lsn)) + `","pages":[` + strings.Join(ps, ",") + `]}`
	return base + "/graft.v1.VolumeService/ReadPages?connect=v1&encoding=json&message=" + url.QueryEscape(msg)
}

// TestEdge_DiskTierRestart: an edge with a cache dir, restarted with the
// whole cluster gone, still serves the snapshots it read before, from
// disk, and a corrupt page file is dropped, never served.
func TestEdge_DiskTierRestart(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	dir := t.TempDir()
	withDisk := func(cfg *Config) {
		cfg.Upstream = c.Endpoints()
		cfg.CacheDir = dir
		cfg.DiskBytes = 8 << 20
		cfg.UpstreamAttempts = 1
		cfg.UpstreamAttemptTimeout = time.Second
	}
	vid := volume.MustNewID()
	var head volume.LSN
	var warm []client.Page
	func() {
		cfgA := DefaultConfig()
		withDisk(&cfgA)
		a, err := New(context.Background(), cfgA)
		if err != nil {
			t.Fatal(err)
		}
		srv := startServing(t, a)
		cl := srv.client(t)
		commitPages(t, ctx, cl, vid, 0, 3, 1, 2, 3)
		head = commitPages(t, ctx, cl, vid, 1, 3, 2)
		if _, warm, err = cl.ReadPages(ctx, vid, head, []volume.PageIdx{1, 2, 3}, client.ReadOptions{}); err != nil {
			t.Fatal(err)
		}
		srv.stop(t)
		if err := a.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}()
	for i := range c.Nodes {
		c.Stop(i)
	}
	// Corrupt page 3's file: it must be dropped and read as a miss.
	bad := filepath.Join(dir, "pages", vid.String(), fmt.Sprintf("3-%d", 1))
	if err := os.WriteFile(bad, make([]byte, pageFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startEdge(t, withDisk)
	cl := b.client(t)
	snap, got, err := cl.ReadPages(ctx, vid, head, []volume.PageIdx{1, 2}, client.ReadOptions{})
	if err != nil {
		t.Fatalf("read after restart, cluster down: %v", err)
	}
	if snap.LSN != head || snap.PageCount != 3 || got[0].LSN != warm[0].LSN || got[1].LSN != warm[1].LSN ||
		!bytes.Equal(got[0].Data, warm[0].Data) || !bytes.Equal(got[1].Data, warm[1].Data) {
		t.Fatalf("after restart: %+v %v, before %v", snap, got, warm)
	}
	if b.pages(sourceCache) != 2 || b.pages(sourceUpstream) != 0 {
		t.Fatalf("after restart: cache %v upstream %v", b.pages(sourceCache), b.pages(sourceUpstream))
	}
	if _, _, err := cl.ReadPages(ctx, vid, head, []volume.PageIdx{3}, client.ReadOptions{}); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("read of the corrupted page file with the cluster down: %v, want unavailable", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("corrupt page file kept: %v", err)
	}
}

// The page cache's bound leaves room for the other caches and for otter's
// write-buffer burst (issue #171), so a full cache plus one burst stays
// within CacheBytes.
func TestPageCacheBytes(t *testing.T) {
	for _, cb := range []int64{64 << 10, 16 << 20, 256 << 20, 4 << 30} {
		pb := pageCacheBytes(cb)
		rest := cb - cb/16 - cb/64
		burst := min(otterBurstEntries()*(volume.PageSize+pageEntryOverhead), rest/8)
		if pb <= 0 || pb+burst != rest || pb+burst+cb/16+cb/64 > cb {
			t.Errorf("cache %d: page cache %d, burst %d, rest %d", cb, pb, burst, rest)
		}
	}
	if MemoryLimit(256<<20) != 368<<20 {
		t.Errorf("MemoryLimit(256 MiB) = %d", MemoryLimit(256<<20))
	}
}
