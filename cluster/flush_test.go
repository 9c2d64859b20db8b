package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// withStore points every node at the object store url; the flush loop is
// off unless interval is set, so rounds run on request.
func withStore(url string, interval time.Duration) clustertest.Option {
	return func(_ int, c *cluster.Config) {
		c.ObjectStore = url
		c.Flush.Interval = interval
		c.Flush.MaxAge = time.Hour
		c.Flush.TargetBytes = 1 << 30
		c.Flush.RetryMin, c.Flush.RetryMax = 20*time.Millisecond, 200*time.Millisecond
		c.Flush.OrphanInterval = 0
		c.Flush.MaxRoundBytes = 8 * volume.PageSize // several rounds per flush
		c.Cache.Records, c.Cache.Segments, c.Cache.PageCacheBytes = 2, 2, 4*volume.PageSize
	}
}

// chain commits to one volume and remembers every snapshot's image.
type chain struct {
	vid    volume.ID
	head   volume.LSN
	images []map[volume.PageIdx][]byte // images[lsn]
	pages  [][]volume.PageWrite        // pages[lsn]: what the commit wrote
}

func newChain() *chain {
	return &chain{vid: volume.MustNewID(), images: []map[volume.PageIdx][]byte{{}}, pages: [][]volume.PageWrite{nil}}
}

const chainPages = 6

func (ch *chain) commit(t *testing.T, ctx context.Context, cl *client.Client) {
	t.Helper()
	lsn := ch.head + 1
	w := []volume.PageWrite{{Idx: volume.PageIdx(1 + int(lsn)%chainPages), Data: page(byte(lsn))}}
	if lsn%3 == 0 {
		w = append(w, volume.PageWrite{Idx: chainPages, Data: page(byte(lsn) ^ 0xff)})
	}
	snap, err := cl.Commit(ctx, ch.vid, ch.head, chainPages, w)
	if err != nil {
		t.Fatalf("commit %s@%d: %v", ch.vid, lsn, err)
	}
	if snap.LSN != lsn {
		t.Fatalf("commit got lsn %d, want %d", snap.LSN, lsn)
	}
	img := map[volume.PageIdx][]byte{}
	for k, v := range ch.images[ch.head] {
		img[k] = v
	}
	for _, p := range w {
		img[p.Idx] = p.Data
	}
	ch.images = append(ch.images, img)
	ch.pages = append(ch.pages, w)
	ch.head = lsn
}

// verify reads every snapshot of the chain through node i and checks every
// page, the grafts and the commit list.
func (ch *chain) verify(t *testing.T, ctx context.Context, cl *client.Client) {
	t.Helper()
	ro := client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: ch.head}
	idxs := make([]volume.PageIdx, chainPages+1)
	for i := range idxs {
		idxs[i] = volume.PageIdx(i + 1)
	}
	for lsn := volume.LSN(1); lsn <= ch.head; lsn++ {
		snap, pages, err := cl.ReadPages(ctx, ch.vid, lsn, idxs, ro)
		if err != nil {
			t.Fatalf("read %s@%d: %v", ch.vid, lsn, err)
		}
		if snap.LSN != lsn || snap.PageCount != chainPages {
			t.Fatalf("read %s@%d: snapshot %v", ch.vid, lsn, snap)
		}
		for _, p := range pages {
			want := ch.images[lsn][p.Idx]
			if want == nil {
				want = volume.ZeroPage()
			}
			if !bytes.Equal(p.Data, want) {
				t.Fatalf("%s@%d page %d: wrong bytes (served version %d)", ch.vid, lsn, p.Idx, p.LSN)
			}
		}
		_, set, err := cl.PullGraft(ctx, ch.vid, lsn-1, lsn, ro)
		if err != nil {
			t.Fatalf("graft %s (%d, %d]: %v", ch.vid, lsn-1, lsn, err)
		}
		if set.Len() != len(ch.pages[lsn]) {
			t.Fatalf("graft %s (%d, %d] = %v, commit wrote %d pages", ch.vid, lsn-1, lsn, set.Slice(), len(ch.pages[lsn]))
		}
	}
	var want volume.PageSet
	for _, w := range ch.pages {
		for _, p := range w {
			want.Add(p.Idx)
		}
	}
	_, set, err := cl.PullGraft(ctx, ch.vid, 0, 0, ro)
	if err != nil || !set.Equal(want) {
		t.Fatalf("graft of the whole chain: %v %v, want %v", set.Slice(), err, want.Slice())
	}
	var got []volume.LSN
	for since, more := volume.LSN(0), true; more; {
		_, cs, m, err := cl.PullCommits(ctx, ch.vid, since, 0, 4, ro)
		if err != nil {
			t.Fatalf("pull commits since %d: %v", since, err)
		}
		for _, c := range cs {
			got = append(got, c.LSN)
		}
		if len(cs) == 0 {
			break
		}
		since, more = cs[len(cs)-1].LSN, m
	}
	if len(got) != int(ch.head) || got[0] != 1 || got[len(got)-1] != ch.head {
		t.Fatalf("pulled commits %v, want 1..%d", got, ch.head)
	}
}

func TestCluster_FlushThenRead(t *testing.T) {
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url, 0))
	ctx := testCtx(t)
	f := follower(c)
	cl := c.Client(f)
	ch := newChain()
	for range 10 {
		ch.commit(t, ctx, cl)
	}
	// Flush through a follower: it forwards to the leader, which returns
	// once the object store has everything.
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	l := c.WaitLeader()
	if h := c.Nodes[l].FSM().History(ch.vid); h.Flushed != 10 || len(h.Froms) < 2 {
		t.Fatalf("history after flush %+v, want 10 flushed in capped rounds", h)
	}
	// More commits stay buffered: reads straddle the boundary.
	for range 5 {
		ch.commit(t, ctx, cl)
	}
	for i := range c.Nodes {
		waitFor(t, func() bool { return c.Nodes[i].FSM().History(ch.vid).Flushed == 10 })
		if c.Nodes[i].FSM().Head(ch.vid).LSN != 15 {
			continue // verify waits for the lsn anyway
		}
	}
	for i := range c.Nodes {
		ch.verify(t, ctx, c.Client(i))
	}

	// An identical retry of a flushed commit gets its original ack; other
	// content on a flushed base is a conflict.
	snap, err := cl.Commit(ctx, ch.vid, 1, chainPages, ch.pages[2])
	if err != nil || snap.LSN != 2 {
		t.Fatalf("retry of flushed commit 2: %v %v", snap, err)
	}
	_, err = cl.Commit(ctx, ch.vid, 1, chainPages, []volume.PageWrite{{Idx: 1, Data: page('x')}})
	var ce *client.ConflictError
	if !errors.As(err, &ce) || ce.Head.LSN != 15 {
		t.Fatalf("stale commit on a flushed base: %v", err)
	}

	// The bucket holds exactly the layout: a log record per round, keyed by
	// its first lsn, gap-free.
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	objs, err := store.List(ctx, "volumes/"+ch.vid.String()+"/log/")
	if err != nil {
		t.Fatal(err)
	}
	h := c.Nodes[l].FSM().History(ch.vid)
	if len(objs) != len(h.Froms) {
		t.Fatalf("%d log records in the bucket, history has %d", len(objs), len(h.Froms))
	}
	for i, o := range objs {
		if !strings.HasSuffix(o.Key, fmt.Sprintf("/%020d", h.Froms[i])) {
			t.Fatalf("log record %d is %q, want from %d", i, o.Key, h.Froms[i])
		}
	}
}

func TestCluster_FlushWithoutStore(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	_, err := c.Client(0).Cluster(0).Flush(ctx, connect.NewRequest(&graftv1.FlushRequest{}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "no object store") {
		t.Fatalf("flush without a store: %v", err)
	}
}

// s3Switch is an HTTP-level fault for the in-process S3 server: while
// down, requests matching get 503; while slow, every request waits.
type s3Switch struct {
	down  atomic.Bool
	match atomic.Value // string: path substring that fails; "" = every request
	delay atomic.Int64 // nanoseconds
}

func (s *s3Switch) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		m, _ := s.match.Load().(string)
		if s.down.Load() && (m == "" || strings.Contains(r.URL.Path, m)) {
			http.Error(w, "injected outage", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// The leader dies after the round's segments are uploaded but before its
// log records are: the next leader finishes exactly that round (no gap, no
// second record), and every acknowledged commit is still readable.
func TestCluster_LeaderKilledMidFlush(t *testing.T) {
	var sw s3Switch
	srv := s3test.StartHandler(t, sw.wrap)
	url := srv.URL("mid-flush")
	c := clustertest.Start(t, 3, withStore(url, 20*time.Millisecond))
	ctx := testCtx(t)
	cl := c.Client(0, 1, 2)
	chains := []*chain{newChain(), newChain()}
	for range 6 {
		for _, ch := range chains {
			ch.commit(t, ctx, cl)
		}
	}
	sw.match.Store("/log/")
	sw.down.Store(true)
	fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err := cl.Flush(fctx)
	cancel()
	if err == nil {
		t.Fatal("flush succeeded while log records fail")
	}
	l := c.WaitLeader()
	plan := c.Nodes[l].FSM().Plan()
	if plan == nil {
		t.Fatal("no open round after the failed flush")
	}
	// Every replica holds the open round.
	for i := range c.Nodes {
		waitFor(t, func() bool { p := c.Nodes[i].FSM().Plan(); return p != nil && p.Round == plan.Round })
	}
	c.Kill(l)
	sw.down.Store(false)
	nl := c.WaitLeader()
	if nl == l {
		t.Fatal("killed leader is still leader")
	}
	// The new leader's flush loop finishes the open round by itself.
	waitFor(t, func() bool { return c.Nodes[nl].FSM().Plan() == nil })
	for _, pv := range plan.Volumes {
		h := c.Nodes[nl].FSM().History(pv.VID)
		if h.Flushed < pv.To || h.Froms[0] != 1 {
			t.Fatalf("%s: history %+v after the resumed round %+v", pv.VID, h, pv)
		}
	}
	// Commits go on; everything acked is readable on the survivors.
	cl2 := c.Client(nl)
	for _, ch := range chains {
		ch.commit(t, ctx, cl2)
	}
	if err := cl2.Flush(ctx); err != nil {
		t.Fatalf("flush after failover: %v", err)
	}
	for _, ch := range chains {
		ch.verify(t, ctx, cl2)
	}
	// No gap, no duplicate: the records in the bucket tile 1..head.
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, ch := range chains {
		objs, err := store.List(ctx, "volumes/"+ch.vid.String()+"/log/")
		if err != nil {
			t.Fatal(err)
		}
		h := c.Nodes[nl].FSM().History(ch.vid)
		if len(objs) != len(h.Froms) || h.Flushed != ch.head {
			t.Fatalf("%s: %d records in the bucket, history %+v, head %d", ch.vid, len(objs), h, ch.head)
		}
	}
	c.Restart(l)
}

// With S3 down, commits are acknowledged until the buffer limit, then get
// resource_exhausted with a retry hint; when S3 is back the buffer drains
// and commits resume.
func TestCluster_S3DownBackpressure(t *testing.T) {
	var sw s3Switch
	srv := s3test.StartHandler(t, sw.wrap)
	c := clustertest.Start(t, 3, withStore(srv.URL("backpressure"), 20*time.Millisecond), func(_ int, cfg *cluster.Config) {
		cfg.Flush.MaxAge = time.Millisecond
		cfg.Limits.MaxBufferBytes = 16 * volume.PageSize
		cfg.Limits.MaxVolumeBufferBytes = 16 * volume.PageSize
	})
	ctx := testCtx(t)
	cl := c.Client(0, 1, 2)
	ch := newChain()
	ch.commit(t, ctx, cl)
	l := c.WaitLeader()
	waitFor(t, func() bool { return c.Nodes[l].FSM().History(ch.vid).Flushed == 1 })

	sw.down.Store(true)
	vc := c.Client(l).Volume(0)
	acked := 0
	var full *connect.Error
	for full == nil {
		lsn := ch.head + 1
		_, err := vc.Commit(ctx, connect.NewRequest(&graftv1.CommitRequest{
			Vid: ch.vid.String(), BaseLsn: uint64(ch.head), PageCount: chainPages,
			Pages: []*graftv1.Page{{Idx: uint32(1 + int(lsn)%chainPages), Data: page(byte(lsn))}},
		}))
		switch {
		case err == nil:
			acked++
			ch.images = append(ch.images, nil)
			ch.pages = append(ch.pages, []volume.PageWrite{{Idx: volume.PageIdx(1 + int(lsn)%chainPages), Data: page(byte(lsn))}})
			img := map[volume.PageIdx][]byte{}
			for k, v := range ch.images[ch.head] {
				img[k] = v
			}
			img[volume.PageIdx(1+int(lsn)%chainPages)] = page(byte(lsn))
			ch.images[lsn] = img
			ch.head = lsn
		case connect.CodeOf(err) == connect.CodeResourceExhausted:
			errors.As(err, &full)
		default:
			t.Fatalf("commit with S3 down: %v", err)
		}
		if acked > 100 {
			t.Fatal("buffer limit never reached")
		}
	}
	if acked != 16 {
		t.Fatalf("%d commits acknowledged with S3 down, want the 16-page buffer's worth", acked)
	}
	if full.Meta().Get("Retry-After") == "" || !strings.Contains(full.Message(), "retry in") {
		t.Fatalf("resource_exhausted without a retry hint: %v (meta %v)", full, full.Meta())
	}
	sw.down.Store(false)
	// The client retries resource_exhausted: this commit lands once the
	// buffer drains.
	ch.commit(t, ctx, cl)
	waitFor(t, func() bool { return c.Nodes[l].FSM().BufferBytes() == 0 })
	ch.verify(t, ctx, cl)
}

// Losing every node loses nothing flushed: a new cluster with empty Raft
// state on the same bucket adopts the volumes and continues their chains.
func TestCluster_RecoverFromBucket(t *testing.T) { recoverFromBucket(t, s3test.URL(t)) }

// The whole path (flush rounds, reads across the boundary, recovery) on
// SeaweedFS, an S3 server we did not write.
func TestSeaweed_ClusterFlushAndRecover(t *testing.T) {
	recoverFromBucket(t, s3test.StartSeaweed(t).FreshURL())
}

func recoverFromBucket(t *testing.T, url string) {
	c := clustertest.Start(t, 3, withStore(url, 0))
	ctx := testCtx(t)
	cl := c.Client(0, 1, 2)
	chains := []*chain{newChain(), newChain(), newChain()}
	for i, ch := range chains {
		for range 3 + 2*i {
			ch.commit(t, ctx, cl)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	oldID := c.Nodes[c.WaitLeader()].FSM().ClusterID()
	for i := range c.Nodes {
		c.Stop(i)
	}

	c2 := clustertest.Start(t, 3, withStore(url, 0))
	cl2 := c2.Client(0, 1, 2)
	// The new cluster adopts the bucket's identity (disaster recovery).
	l := c2.WaitLeader()
	waitFor(t, func() bool { return c2.Nodes[l].FSM().Recovered() })
	if got := c2.Nodes[l].FSM().ClusterID(); got == "" || got != oldID {
		t.Fatalf("recovered cluster id %q, the bucket's %q", got, oldID)
	}
	for _, ch := range chains {
		snap, err := cl2.Snapshot(ctx, ch.vid, 0, client.ReadOptions{})
		if err != nil || snap.LSN != ch.head || snap.PageCount != chainPages {
			t.Fatalf("recovered head of %s: %v %v, want lsn %d", ch.vid, snap, err, ch.head)
		}
		ch.verify(t, ctx, cl2)
		// A retry of the last flushed commit is recognised...
		if snap, err := cl2.Commit(ctx, ch.vid, ch.head-1, chainPages, ch.pages[ch.head]); err != nil || snap.LSN != ch.head {
			t.Fatalf("retry of %s@%d after recovery: %v %v", ch.vid, ch.head, snap, err)
		}
		// ...and the chain continues at the bucket's head.
		ch.commit(t, ctx, cl2)
	}
	for _, ch := range chains {
		ch.verify(t, ctx, cl2)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A new leader whose FSM has not yet applied what the previous leader
// acknowledged must not take its flush target from that state: Flush
// answers only once everything acknowledged before the call is in the
// bucket. The seam holds the new leader's FSM (it keeps receiving the log)
// until the flush waits for the leader barrier.
func TestCluster_FlushWaitsForLeaderBarrier(t *testing.T) {
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url, 0), func(_ int, cfg *cluster.Config) {
		cfg.FlushOnLeave = 0 // the old leader must not flush on handing over
	})
	ctx := testCtx(t)
	a := c.WaitLeader()
	b := (a + 1) % len(c.Nodes)
	ch := newChain()
	ch.commit(t, ctx, c.Client(a))
	if err := c.Client(a).Flush(ctx); err != nil {
		t.Fatalf("first flush: %v", err)
	}
	waitFor(t, func() bool { return c.Nodes[b].FSM().History(ch.vid).Flushed == 1 })

	release := make(chan struct{})
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before the cluster's cleanup closes the nodes
	waiting := make(chan struct{}, 1)
	c.Nodes[b].SetHooks(cluster.Hooks{
		BeforeApply: func() { <-release },
		BarrierWait: func() {
			select {
			case waiting <- struct{}{}:
			default:
			}
		},
	})
	ch.commit(t, ctx, c.Client(a)) // acknowledged by a and the third node; b holds it unapplied
	if err := transfer(t, ctx, c, a, b); err != nil {
		t.Fatalf("transfer to the held node: %v", err)
	}
	flushed := make(chan error, 1)
	go func() {
		_, err := c.Client(b).Cluster(0).Flush(ctx, connect.NewRequest(&graftv1.FlushRequest{}))
		flushed <- err
	}()
	var err error
	select {
	case err = <-flushed: // answered while b's FSM was still behind
	case <-waiting:
		unhold()
		err = <-flushed
	}
	if err != nil {
		t.Fatalf("flush on the new leader: %v", err)
	}
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	objs, err := store.List(ctx, "volumes/"+ch.vid.String()+"/log/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || !strings.HasSuffix(objs[1].Key, fmt.Sprintf("/%020d", 2)) {
		t.Fatalf("flush succeeded with %d log records in the bucket, want 2: lsn 2, acknowledged before the flush, is not durable", len(objs))
	}
	unhold()
}

// A retry whose base+1 is flushed is answered from the log record. When
// that record cannot be read (here: deleted behind the cluster's back) the
// leader cannot tell a retry from a stale commit: the outcome is unknown,
// answered unavailable (clients retry), never data_loss (clients give up,
// and would report as failed a commit that landed). Reads of the lost
// LSNs are data_loss: that data is gone.
func TestCluster_RetryOfFlushedCommitWithoutRecord(t *testing.T) {
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url, 0))
	ctx := testCtx(t)
	l := c.WaitLeader()
	cl := c.Client(l)
	ch := newChain()
	ch.commit(t, ctx, cl)
	ch.commit(t, ctx, cl)
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Delete(ctx, segment.LogKey(ch.vid, 1)); err != nil {
		t.Fatal(err)
	}
	var pages []*graftv1.Page
	for _, p := range ch.pages[1] {
		pages = append(pages, &graftv1.Page{Idx: uint32(p.Idx), Data: p.Data})
	}
	_, err = cl.Volume(0).Commit(ctx, connect.NewRequest(&graftv1.CommitRequest{
		Vid: ch.vid.String(), BaseLsn: 0, PageCount: chainPages, Pages: pages,
	}))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("retry of lsn 1 with its log record missing: %v, want unavailable", err)
	}
	_, err = cl.Volume(0).ReadPages(ctx, connect.NewRequest(&graftv1.ReadPagesRequest{
		Vid: ch.vid.String(), Lsn: 1, Pages: []uint32{1},
	}))
	if connect.CodeOf(err) != connect.CodeDataLoss {
		t.Fatalf("read of lsn 1 with its log record missing: %v, want data_loss", err)
	}
}

// On a new cluster recovering from a bucket, WatchVolume's first message
// is the recovered head, never 0 for a volume the bucket holds. S3 stays
// down (so recovery cannot finish) until the watch waits for recovery.
func TestCluster_WatchVolumeWaitsForRecovery(t *testing.T) {
	var sw s3Switch
	srv := s3test.StartHandler(t, sw.wrap)
	url := srv.URL("watch-recover")
	c := clustertest.Start(t, 3, withStore(url, 0))
	ctx := testCtx(t)
	ch := newChain()
	for range 3 {
		ch.commit(t, ctx, c.Client(0, 1, 2))
	}
	if err := c.Client(0, 1, 2).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		c.Stop(i)
	}

	sw.down.Store(true)
	t.Cleanup(func() { sw.down.Store(false) })
	c2 := clustertest.Start(t, 3, withStore(url, 0))
	waiting := make(chan struct{}, 1)
	c2.Nodes[0].SetHooks(cluster.Hooks{RecoveryWait: func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}})
	type first struct {
		msg *graftv1.WatchVolumeResponse
		err error
	}
	got := make(chan first, 1)
	go func() {
		stream, err := c2.Client(0).Volume(0).WatchVolume(ctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: ch.vid.String()}))
		if err != nil {
			got <- first{err: err}
			return
		}
		defer stream.Close()
		if !stream.Receive() {
			got <- first{err: stream.Err()}
			return
		}
		got <- first{msg: stream.Msg()}
	}()
	var f first
	select {
	case f = <-got: // answered while recovery could not finish
	case <-waiting:
		sw.down.Store(false)
		f = <-got
	}
	if f.err != nil {
		t.Fatalf("watch: %v", f.err)
	}
	if lsn := volume.LSN(f.msg.GetSnapshot().GetLsn()); lsn != ch.head {
		t.Fatalf("first head of a recovered volume is lsn %d, want %d (the bucket's head)", lsn, ch.head)
	}
}
