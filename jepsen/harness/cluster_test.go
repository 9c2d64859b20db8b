package harness_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/harness"
	"github.com/graft-cluster/graft/jepsen/proxy"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/fakes3"
	"github.com/graft-cluster/graft/volume"
)

// newClient returns a client of endpoints that retries for a while.
func newClient(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	cl, err := client.New(endpoints, client.WithAttemptTimeout(2*time.Second), client.WithAttempts(20), client.WithBackoff(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// oneShot returns a client of one endpoint that tries once, briefly.
func oneShot(t *testing.T, endpoint string) *client.Client {
	t.Helper()
	cl, err := client.New([]string{endpoint}, client.WithAttempts(1), client.WithAttemptTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// page returns a page filled with s.
func page(s string) []byte {
	return bytes.Repeat([]byte(s), volume.PageSize/len(s)+1)[:volume.PageSize]
}

// commit commits page 1 = page(data) on base and fails the test unless
// it is acked at base+1.
func commit(t *testing.T, cl *client.Client, vid volume.ID, base volume.LSN, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, err := cl.Commit(ctx, vid, base, 4, []volume.PageWrite{{Idx: 1, Data: page(data)}})
	if err != nil {
		t.Fatalf("commit %q on base %d: %v", data, base, err)
	}
	if snap.LSN != base+1 {
		t.Fatalf("commit %q on base %d acked at %d", data, base, snap.LSN)
	}
}

// waitConverged waits until every node has applied the same index and
// holds head lsn for vid with page 1 = page(data), read from each node's
// own state over its real address.
func waitConverged(t *testing.T, c *harness.Cluster, vid volume.ID, lsn volume.LSN, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idx, err := c.WaitConverged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, ep := range c.Endpoints() {
		cl := oneShot(t, ep)
		var last error
		for {
			snap, pages, err := cl.ReadPages(ctx, vid, 0, []volume.PageIdx{1}, client.ReadOptions{Consistency: client.Stale})
			switch {
			case err != nil:
				last = err
			case snap.LSN != lsn:
				last = fmt.Errorf("head %d, want %d", snap.LSN, lsn)
			case len(pages) != 1 || !bytes.Equal(pages[0].Data, page(data)):
				last = fmt.Errorf("page 1 is not %q", data)
			default:
				last = nil
			}
			if last == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d: %v", i, last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("converged at applied index %d, head %d", idx, lsn)
}

// newLeader polls until the nodes agree on a leader other than old.
func newLeader(t *testing.T, c *harness.Cluster, old int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		i, err := c.Leader(ctx)
		if err != nil {
			t.Fatalf("no new leader: %v", err)
		}
		if i != old {
			return i
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leader(t *testing.T, c *harness.Cluster) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	i, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func others(c *harness.Cluster, i int) []int {
	var out []int
	for j := range c.Nodes() {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}

func endpointsOf(c *harness.Cluster, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, c.ClientEndpoints()[i])
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// unavailable reports whether err is what a node that cannot commit
// answers: unavailable, or no answer before the deadline.
func unavailable(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

func TestCluster_Start(t *testing.T) {
	c := startCluster(t, nil)
	if c.Nodes() != 3 {
		t.Fatalf("Nodes = %d, want 3", c.Nodes())
	}
	eps, direct := c.ClientEndpoints(), c.Endpoints()
	for i := range 3 {
		if c.NodeID(i) != fmt.Sprintf("n%d", i+1) || c.NodeIndex(c.NodeID(i)) != i {
			t.Errorf("node %d: ID %q, index %d", i, c.NodeID(i), c.NodeIndex(c.NodeID(i)))
		}
		if eps[i] != "http://"+c.ClientProxy(i).Addr() || c.ClientProxy(i).Target() != c.APIAddr(i) {
			t.Errorf("node %d: client endpoint %s, proxy to %s; want the proxy to %s", i, eps[i], c.ClientProxy(i).Target(), c.APIAddr(i))
		}
		if direct[i] != "http://"+c.APIAddr(i) {
			t.Errorf("node %d: endpoint %s, want http://%s", i, direct[i], c.APIAddr(i))
		}
		if !c.Running(i) || c.Paused(i) || c.PID(i) == 0 {
			t.Errorf("node %d: Running %v, Paused %v, PID %d", i, c.Running(i), c.Paused(i), c.PID(i))
		}
		for j := range 3 {
			if i == j {
				continue
			}
			if c.RaftProxy(i, j).Target() != c.RaftAddr(j) || c.APIProxy(i, j).Target() != c.APIAddr(j) {
				t.Errorf("proxies %d->%d do not lead to %d", i, j, j)
			}
		}
	}
	for url, want := range map[string]string{
		c.ObjectStoreURL():       "http://" + c.S3Proxy().Addr(),
		c.DirectObjectStoreURL(): "http://" + c.S3Proxy().Target(),
	} {
		if got := endpointOf(t, url); got != want {
			t.Errorf("object store URL %s: endpoint %s, want %s", url, got, want)
		}
	}

	// A commit through every client proxy; the peers talk through theirs.
	vid := volume.MustNewID()
	for i := range 3 {
		commit(t, newClient(t, eps[i]), vid, volume.LSN(i), fmt.Sprintf("via n%d ", i+1))
	}
	waitConverged(t, c, vid, 3, "via n3 ")
	for i := range 3 {
		if s := c.ClientProxy(i).Stats(); s.BytesUp < volume.PageSize {
			t.Errorf("client proxy %d forwarded %d bytes, want a page at least", i, s.BytesUp)
		}
	}
	var raftBytes int64
	for i := range 3 {
		for _, j := range others(c, i) {
			raftBytes += c.RaftProxy(i, j).Stats().BytesUp
		}
	}
	if raftBytes < 3*volume.PageSize {
		t.Errorf("raft proxies forwarded %d bytes, want the pages replicated through them", raftBytes)
	}
}

// endpointOf returns the endpoint parameter of an s3:// URL.
func endpointOf(t *testing.T, s3url string) string {
	t.Helper()
	u, err := url.Parse(s3url)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("endpoint")
}

func TestCluster_PartitionLeader(t *testing.T) {
	c := startCluster(t, nil)
	cl := newClient(t, c.ClientEndpoints()...)
	vid := volume.MustNewID()
	commit(t, cl, vid, 0, "before")

	old := leader(t, c)
	majority := others(c, old)
	must(t, c.Partition([][]int{{old}, majority}))
	nl := newLeader(t, c, old)
	if !slices.Contains(majority, nl) {
		t.Fatalf("new leader %d is not in the majority %v", nl, majority)
	}

	// The old leader cannot commit: no quorum, no known leader.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := oneShot(t, c.ClientEndpoints()[old]).Commit(ctx, vid, 1, 4, []volume.PageWrite{{Idx: 1, Data: page("minority")}})
	cancel()
	if err == nil || !unavailable(err) {
		t.Fatalf("commit through the isolated old leader = %v, want unavailable or a timeout", err)
	}
	t.Logf("isolated old leader answered: %v", err)
	// The majority can.
	commit(t, newClient(t, endpointsOf(c, majority)...), vid, 1, "majority")

	must(t, c.Heal())
	waitConverged(t, c, vid, 2, "majority")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	states := c.States(ctx)
	if s := states[old]; s.Err != nil || s.State != "follower" || s.Leader == "" || s.Leader == c.NodeID(old) {
		t.Errorf("old leader after heal: %+v, want a follower of another node", s)
	}
	commit(t, cl, vid, 2, "healed")
	waitConverged(t, c, vid, 3, "healed")
}

func TestCluster_KillRestart(t *testing.T) {
	c := startCluster(t, nil)
	cl := newClient(t, c.ClientEndpoints()...)
	vid := volume.MustNewID()
	commit(t, cl, vid, 0, "one")

	old := leader(t, c)
	pid := c.PID(old)
	must(t, c.Kill(old))
	if c.Running(old) || c.PID(old) != 0 {
		t.Fatalf("after Kill: Running %v, PID %d", c.Running(old), c.PID(old))
	}
	if err := c.Kill(old); !errors.Is(err, harness.ErrNotRunning) {
		t.Errorf("second Kill = %v, want ErrNotRunning", err)
	}
	newLeader(t, c, old)
	commit(t, cl, vid, 1, "two")

	must(t, c.Restart(old))
	if !c.Running(old) || c.PID(old) == pid || c.PID(old) == 0 {
		t.Fatalf("after Restart: Running %v, PID %d (was %d)", c.Running(old), c.PID(old), pid)
	}
	if err := c.Restart(old); !errors.Is(err, harness.ErrRunning) {
		t.Errorf("second Restart = %v, want ErrRunning", err)
	}
	waitConverged(t, c, vid, 2, "two")

	// Every node at once: the data is on their disks.
	must(t, c.KillAll())
	for i := range c.Nodes() {
		if c.Running(i) {
			t.Errorf("node %d runs after KillAll", i)
		}
	}
	must(t, c.RestartAll())
	commit(t, cl, vid, 2, "three")
	waitConverged(t, c, vid, 3, "three")
	if len(c.UnexpectedExits()) != 0 {
		t.Errorf("kills counted as unexpected exits: %+v", c.UnexpectedExits())
	}
}

func TestCluster_PauseResume(t *testing.T) {
	c := startCluster(t, nil)
	cl := newClient(t, c.ClientEndpoints()...)
	vid := volume.MustNewID()
	commit(t, cl, vid, 0, "one")

	old := leader(t, c)
	must(t, c.Pause(old))
	if !c.Paused(old) || !c.Running(old) {
		t.Fatalf("after Pause: Paused %v, Running %v", c.Paused(old), c.Running(old))
	}
	newLeader(t, c, old)
	commit(t, newClient(t, endpointsOf(c, others(c, old))...), vid, 1, "two")

	must(t, c.Resume(old))
	if c.Paused(old) {
		t.Error("Paused after Resume")
	}
	waitConverged(t, c, vid, 2, "two")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s := c.States(ctx)[old]; s.State != "follower" {
		t.Errorf("resumed old leader: %+v, want a follower", s)
	}
}

func TestCluster_Links(t *testing.T) {
	c := startCluster(t, nil)
	vid := volume.MustNewID()
	l := leader(t, c)
	f := others(c, l)[0]
	via := oneShot(t, c.ClientEndpoints()[f])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A client link that rejects: the node is unreachable for clients,
	// fast, and reachable again once it passes.
	must(t, c.SetClientLink(f, proxy.Reject))
	// connect-go reports a reset connection as canceled or unavailable.
	_, err := via.Commit(ctx, vid, 0, 4, []volume.PageWrite{{Idx: 1, Data: page("x")}})
	if code := connect.CodeOf(err); code != connect.CodeUnavailable && code != connect.CodeCanceled {
		t.Errorf("commit through a rejecting client link = %v, want unavailable or canceled", err)
	}
	must(t, c.SetClientLink(f, proxy.Pass))
	commit(t, newClient(t, c.ClientEndpoints()[f]), vid, 0, "one")

	// Peer link delay: a commit through a follower crosses the follower ->
	// leader API link twice and the leader -> follower Raft link.
	const d = 50 * time.Millisecond
	must(t, c.SetLinkDelay(d, 10*time.Millisecond))
	start := time.Now()
	commit(t, newClient(t, c.ClientEndpoints()[f]), vid, 1, "slow")
	if took := time.Since(start); took < 2*d {
		t.Errorf("commit through a follower with %s link delay took %s, want at least %s", d, took, 2*d)
	}
	must(t, c.Heal())
	if dl, j := c.RaftProxy(l, f).Delay(); dl != 0 || j != 0 {
		t.Errorf("delay after Heal = %s, %s; want 0", dl, j)
	}

	// An asymmetric cut: the follower's own links to the leader drop; the
	// leader still reaches it, so it stays a follower and keeps applying.
	must(t, c.SetLink(f, l, proxy.Drop))
	commit(t, newClient(t, c.ClientEndpoints()[l]), vid, 2, "leader")
	must(t, c.Heal())
	waitConverged(t, c, vid, 3, "leader")

	if err := c.Partition([][]int{{0, 1}, {1, 2}}); err == nil {
		t.Error("Partition with a node in two groups succeeded")
	}
	if err := c.Partition([][]int{{0, 7}}); !errors.Is(err, harness.ErrNoNode) {
		t.Errorf("Partition with node 7 = %v, want ErrNoNode", err)
	}
}

func TestCluster_TransferLeadership(t *testing.T) {
	c := startCluster(t, nil)
	old := leader(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nl, err := c.TransferLeadership(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nl == old {
		t.Fatalf("leader still %d after TransferLeadership", nl)
	}
	if got := leader(t, c); got != nl {
		t.Errorf("Leader = %d, TransferLeadership said %d", got, nl)
	}
}

func TestCluster_RemoveAndReadd(t *testing.T) {
	c := startCluster(t, nil)
	cl := newClient(t, c.ClientEndpoints()...)
	vid := volume.MustNewID()
	commit(t, cl, vid, 0, "one")
	commit(t, cl, vid, 1, "two")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	l := leader(t, c)
	f := others(c, l)[0]
	pid := c.PID(f)
	if err := c.RemoveAndReadd(ctx, f); err != nil {
		t.Fatalf("RemoveAndReadd(follower %d): %v", f, err)
	}
	if c.PID(f) == pid {
		t.Errorf("follower %d still runs pid %d", f, pid)
	}
	// Its data came back from the others, through the log.
	waitConverged(t, c, vid, 2, "two")
	commit(t, cl, vid, 2, "three")
	waitConverged(t, c, vid, 3, "three")

	// The leader removes itself, steps down, and comes back as a follower.
	l = leader(t, c)
	if err := c.RemoveAndReadd(ctx, l); err != nil {
		t.Fatalf("RemoveAndReadd(leader %d): %v", l, err)
	}
	if nl := leader(t, c); nl == l {
		t.Errorf("leader %d leads again right after its re-add", nl)
	}
	commit(t, cl, vid, 3, "four")
	waitConverged(t, c, vid, 4, "four")

	// A restart of a re-added node keeps its new state.
	must(t, c.Kill(f))
	must(t, c.Restart(f))
	commit(t, cl, vid, 4, "five")
	waitConverged(t, c, vid, 5, "five")
}

// A RemoveAndReadd cut short by its context right after the wiped node's
// new process started (what the run's time limit did to register
// membership seed 9) leaves the node out of the configuration, and the
// others never converge with it. Rejoin brings it back as a voter with the
// others' data.
func TestCluster_RejoinAfterCutShortRemoveAndReadd(t *testing.T) {
	c := startCluster(t, nil)
	cl := newClient(t, c.ClientEndpoints()...)
	vid := volume.MustNewID()
	commit(t, cl, vid, 0, "one")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	f := others(c, leader(t, c))[0]
	pid := c.PID(f)
	cut, cutNow := context.WithCancel(ctx)
	defer cutNow()
	go func() {
		defer cutNow()
		for cut.Err() == nil {
			if p := c.PID(f); p != 0 && p != pid {
				return // the wiped node's new process exists: cut here
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := c.RemoveAndReadd(cut, f); err == nil {
		t.Fatal("RemoveAndReadd succeeded; the test needs it cut short")
	} else {
		t.Logf("cut short: %v", err)
	}
	// What healing did before: resume and restart every node.
	for i := range c.Nodes() {
		_ = c.Resume(i)
		_ = c.Restart(i)
	}
	members, err := c.Members(ctx)
	must(t, err)
	if members[f] == "voter" {
		t.Fatalf("node %d is a voter after the cut; members %v", f, members)
	}
	commit(t, cl, vid, 1, "two")

	must(t, c.Rejoin(ctx))
	members, err = c.Members(ctx)
	must(t, err)
	for i := range c.Nodes() {
		if members[i] != "voter" {
			t.Errorf("node %d is %q after Rejoin, want voter; members %v", i, members[i], members)
		}
	}
	waitConverged(t, c, vid, 2, "two")
	must(t, c.Rejoin(ctx)) // nothing left to do
}

func TestCluster_S3(t *testing.T) {
	c := startCluster(t, func(cfg *harness.Config) {
		// Flush only on request, so the test decides when S3 is used.
		cfg.NodeArgs = []string{"--flush-interval", "0"}
	})
	cl := newClient(t, c.ClientEndpoints()...)
	vid := volume.MustNewID()
	flush := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return oneShot(t, c.Endpoints()[0]).Flush(ctx)
	}

	commit(t, cl, vid, 0, "one")
	must(t, c.S3(proxy.Drop))
	// Commits do not wait for S3.
	commit(t, cl, vid, 1, "two")
	if err := flush(2 * time.Second); err == nil {
		t.Fatal("Flush succeeded while S3 drops")
	} else {
		t.Logf("flush while S3 drops: %v", err)
	}
	must(t, c.S3(proxy.Reject))
	if err := flush(3 * time.Second); err == nil {
		t.Fatal("Flush succeeded while S3 rejects")
	} else {
		t.Logf("flush while S3 rejects: %v", err)
	}
	must(t, c.S3(proxy.Pass))
	// A live store that answers 503 to every request fails rounds too.
	must(t, c.S3Errors(t.Context(), fakes3.Faults{Rate: 1, Status: http.StatusServiceUnavailable}))
	if err := flush(3 * time.Second); err == nil {
		t.Fatal("Flush succeeded while S3 answers 503")
	} else {
		t.Logf("flush while S3 answers 503: %v", err)
	}
	fst, err := c.S3FaultStats(t.Context())
	if err != nil || fst.Injected == 0 {
		t.Errorf("S3FaultStats = %+v, %v; want injected errors", fst, err)
	}
	must(t, c.S3Errors(t.Context(), fakes3.Faults{}))
	if err := flush(30 * time.Second); err != nil {
		t.Fatalf("Flush after S3 came back: %v", err)
	}

	// The bucket, read directly, holds the volume's log.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := objstore.Open(ctx, c.DirectObjectStoreURL())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	objs, err := st.List(ctx, "volumes/"+vid.String()+"/log/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Errorf("no log record for %s in the bucket after Flush", vid)
	}
	if s := c.S3Proxy().Stats(); s.BytesUp == 0 || s.Rejected == 0 {
		t.Errorf("S3 proxy stats %+v: want bytes forwarded and connections rejected", s)
	}
}

func TestCluster_NoObjectStore(t *testing.T) {
	c := startCluster(t, func(cfg *harness.Config) { cfg.NoObjectStore = true })
	if c.S3Proxy() != nil || c.ObjectStoreURL() != "" {
		t.Errorf("S3Proxy %v, ObjectStoreURL %q without an object store", c.S3Proxy(), c.ObjectStoreURL())
	}
	if err := c.S3(proxy.Drop); !errors.Is(err, harness.ErrNoObjectStore) {
		t.Errorf("S3(Drop) = %v, want ErrNoObjectStore", err)
	}
	commit(t, newClient(t, c.ClientEndpoints()...), volume.MustNewID(), 0, "one")
}

// GracefulRestart of the leader moves leadership off it before SIGTERM,
// brings a new process of the upgrade binary up on the same data, and
// returns only once it serves again and has caught up; the exit is not
// unexpected. A follower's restart leaves the leader alone.
func TestCluster_GracefulRestart(t *testing.T) {
	upgrade := filepath.Join(t.TempDir(), "graft-upgrade")
	b, err := os.ReadFile(graftBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(upgrade, b, 0o755); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, func(cfg *harness.Config) { cfg.UpgradeBinary = upgrade })
	cl := newClient(t, c.ClientEndpoints()...)
	vid := volume.MustNewID()
	commit(t, cl, vid, 0, "one")

	old := leader(t, c)
	pid := c.PID(old)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, c.GracefulRestart(ctx, old))
	if !c.Running(old) || c.PID(old) == pid || c.PID(old) == 0 {
		t.Fatalf("after GracefulRestart: Running %v, PID %d (was %d)", c.Running(old), c.PID(old), pid)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.PID(old))); err == nil && exe != upgrade {
		t.Errorf("n%d runs %s after GracefulRestart, want the upgrade binary %s", old+1, exe, upgrade)
	}
	if l := leader(t, c); l == old {
		t.Errorf("n%d leads again right after its restart; leadership was not moved off it", old+1)
	}
	log, err := os.ReadFile(c.LogPath(old))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), fmt.Sprintf("pid %d ended: exit status 0", pid)) {
		t.Errorf("n%d's log does not show a clean exit after SIGTERM:\n%s", old+1, log)
	}
	commit(t, cl, vid, 1, "two")

	f := (leader(t, c) + 1) % c.Nodes()
	l := leader(t, c)
	must(t, c.GracefulRestart(ctx, f))
	if now := leader(t, c); now != l {
		t.Errorf("restarting follower n%d moved leadership from n%d to n%d", f+1, l+1, now+1)
	}
	commit(t, cl, vid, 2, "three")
	waitConverged(t, c, vid, 3, "three")
	if len(c.UnexpectedExits()) != 0 {
		t.Errorf("graceful restarts counted as unexpected exits: %+v", c.UnexpectedExits())
	}
}
