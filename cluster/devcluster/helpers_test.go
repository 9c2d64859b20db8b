package devcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/cluster/devcluster"
)

// waitTimeout bounds every poll in these tests; the fake nodes are up in
// milliseconds, so hitting it means a bug, not a slow machine.
const waitTimeout = 20 * time.Second

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logRecords collects the supervisor's slog records as JSON objects.
type logRecords struct{ syncBuffer }

// find returns the records whose msg is msg, in order.
func (l *logRecords) find(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(l.String())))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("decode log record %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// handedOut holds every port freePortBase has returned, so that parallel
// tests never share one even though the probe listeners are closed.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePortBase returns a random port base in 20000..31999 whose API and Raft
// ports for nodes nodes, and S3 port, are all free right now and not handed
// out before.
// The ports stay below Linux's default ephemeral range (32768..60999), where
// any client socket, WaitReady's included, could take one before its node
// binds it.
func freePortBase(t testing.TB, nodes int) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 100 {
		base := 20000 + rand.IntN(12000)
		ports := clusterPorts(base, nodes)
		if slices.ContainsFunc(ports, func(p int) bool { return handedOut.ports[p] }) || !portsFree(ports) {
			continue
		}
		for _, p := range ports {
			handedOut.ports[p] = true
		}
		return base
	}
	t.Fatal("no free port base found")
	return 0
}

// clusterPorts returns the API and Raft ports of nodes 1..nodes and the
// embedded S3 server's port.
func clusterPorts(base, nodes int) []int {
	ports := []int{base + devcluster.S3PortOffset, base + devcluster.EdgePortOffset}
	for i := 1; i <= nodes; i++ {
		ports = append(ports, base+i, base+devcluster.RaftPortOffset+i)
	}
	return ports
}

// portsFree reports whether every port can be listened on right now.
func portsFree(ports []int) bool {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for _, port := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}

// testCluster is a Cluster of fake nodes plus what the test observes of it.
type testCluster struct {
	*devcluster.Cluster
	cfg    devcluster.Config
	logs   *logRecords
	out    *syncBuffer
	cancel context.CancelFunc
	runErr chan error
}

// newTestCluster returns a Cluster of fake nodes (this test binary) in a
// temporary directory on free ports; edit adjusts the Config.
func newTestCluster(t *testing.T, edit func(*devcluster.Config)) *testCluster {
	t.Helper()
	tc := &testCluster{logs: &logRecords{}, out: &syncBuffer{}}
	cfg := devcluster.DefaultConfig()
	cfg.Binary = os.Args[0]
	cfg.Dir = t.TempDir()
	cfg.RestartDelay = 10 * time.Millisecond
	cfg.StopTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewJSONHandler(tc.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.LogOutput = tc.out
	if edit != nil {
		edit(&cfg)
	}
	if cfg.PortBase == devcluster.DefaultConfig().PortBase {
		cfg.PortBase = freePortBase(t, cfg.Nodes)
	}
	c, err := devcluster.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tc.Cluster, tc.cfg = c, cfg
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("supervisor log:\n%s", tc.logs.String())
			t.Logf("node output:\n%s", tc.out.String())
		}
	})
	return tc
}

// start runs the cluster in the background; the test's cleanup stops it
// and waits for Run to return.
func (tc *testCluster) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tc.cancel = cancel
	tc.runErr = make(chan error, 1)
	go func() { tc.runErr <- tc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-tc.runErr:
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
	})
}

// stop cancels Run and returns its result.
func (tc *testCluster) stop(t *testing.T) error {
	t.Helper()
	tc.cancel()
	select {
	case err := <-tc.runErr:
		tc.runErr <- err // for the cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func (tc *testCluster) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := tc.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

// pids returns every node's current pid, failing if one is not running.
func (tc *testCluster) pids(t *testing.T) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, id := range tc.NodeIDs() {
		pid := tc.PID(id)
		if pid == 0 {
			t.Fatalf("PID(%s) = 0 on a running cluster", id)
		}
		pids[id] = pid
	}
	return pids
}

// eventually polls cond every 10ms until it returns nil, failing the test
// with cond's last error after waitTimeout.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, waitTimeout, err)
		}
		<-tick.C
	}
}
