// Package clustertest runs in-process graft clusters for tests: real Raft
// with fsynced raft-boltdb logs in temp dirs, real TCP on loopback.
package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
)

// Cluster is a set of in-process nodes.
type Cluster struct {
	tb    testing.TB
	cfgs  []cluster.Config
	Nodes []*cluster.Node // nil while a node is stopped
	// ClientOptions are added to every client Client returns (a CA, a
	// token).
	ClientOptions []client.Option
}

// Option adjusts every node's config before start.
type Option func(i int, c *cluster.Config)

// Start starts n nodes that bootstrap one cluster, and waits for a leader.
func Start(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, Nodes: make([]*cluster.Node, n)}
	dir := tb.TempDir()
	raftLns := make([]net.Listener, n)
	apiLns := make([]net.Listener, n)
	var peers []cluster.Peer
	for i := range n {
		raftLns[i] = listen(tb)
		apiLns[i] = listen(tb)
		peers = append(peers, cluster.Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: raftLns[i].Addr().String(), APIAddr: apiLns[i].Addr().String()})
	}
	for i := range n {
		cfg := cluster.DefaultConfig()
		cfg.ID = peers[i].ID
		cfg.Dir = filepath.Join(dir, cfg.ID)
		cfg.RaftAddr, cfg.APIAddr = peers[i].RaftAddr, peers[i].APIAddr
		cfg.Peers = peers
		cfg.Bootstrap = true
		cfg.Logger = Logger(tb)
		cfg.RaftLogLevel = "error"
		cfg.RaftLogOutput = io.Discard
		if os.Getenv("GRAFT_TEST_DEBUG") != "" {
			cfg.RaftLogOutput = os.Stderr
		}
		cfg.Raft.HeartbeatTimeout = 300 * time.Millisecond
		cfg.Raft.ElectionTimeout = 300 * time.Millisecond
		cfg.Raft.LeaderLeaseTimeout = 150 * time.Millisecond
		for _, o := range opts {
			o(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		cfg.RaftListener, cfg.APIListener = raftLns[i], apiLns[i]
		node, err := cluster.Open(context.Background(), cfg)
		if err != nil {
			tb.Fatalf("open %s: %v", cfg.ID, err)
		}
		c.Nodes[i] = node
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range c.Nodes {
			if n != nil {
				_ = n.Close(ctx)
			}
		}
	})
	c.WaitLeader()
	return c
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// Logger returns a logger that writes to the test log at warn level, or
// to stderr at debug level when GRAFT_TEST_DEBUG is set.
func Logger(tb testing.TB) *slog.Logger {
	if os.Getenv("GRAFT_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// WaitLeader waits up to 15s until every running node agrees on a leader
// that is running and ready for linearizable reads, and returns its index.
func (c *Cluster) WaitLeader() int {
	c.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		leader := ""
		agree := true
		for _, n := range c.Nodes {
			if n == nil {
				continue
			}
			l := n.Leader()
			if l == "" || (leader != "" && l != leader) {
				agree = false
				break
			}
			leader = l
		}
		if agree && leader != "" {
			for i, n := range c.Nodes {
				if n != nil && n.ID() == leader && n.IsLeader() {
					return i
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.tb.Fatalf("no leader within 15s")
	return -1
}

// Endpoint returns node i's API URL (https:// when the node runs TLS).
func (c *Cluster) Endpoint(i int) string {
	if c.cfgs[i].TLS != nil {
		return "https://" + c.cfgs[i].APIAddr
	}
	return "http://" + c.cfgs[i].APIAddr
}

// Endpoints returns every node's API URL.
func (c *Cluster) Endpoints() []string {
	var out []string
	for i := range c.cfgs {
		out = append(out, c.Endpoint(i))
	}
	return out
}

// Client returns a client of the given nodes (all when none are given).
func (c *Cluster) Client(nodes ...int) *client.Client {
	c.tb.Helper()
	eps := c.Endpoints()
	if len(nodes) > 0 {
		eps = nil
		for _, i := range nodes {
			eps = append(eps, c.Endpoint(i))
		}
	}
	cl, err := client.New(eps, append([]client.Option{client.WithAttemptTimeout(3 * time.Second)}, c.ClientOptions...)...)
	if err != nil {
		c.tb.Fatal(err)
	}
	return cl
}

// Stop closes node i gracefully (a leader transfers leadership first).
func (c *Cluster) Stop(i int) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[i].Close(ctx); err != nil {
		c.tb.Logf("close %s: %v", c.cfgs[i].ID, err)
	}
	c.Nodes[i] = nil
}

// Kill stops node i abruptly, as a crash would.
func (c *Cluster) Kill(i int) {
	c.tb.Helper()
	if err := c.Nodes[i].Abort(); err != nil {
		c.tb.Logf("abort %s: %v", c.cfgs[i].ID, err)
	}
	c.Nodes[i] = nil
}

// Restart starts a stopped node again on its old addresses and data.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	cfg := c.cfgs[i]
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The old listeners' ports may linger for a moment after close.
		c.Nodes[i], err = cluster.Open(context.Background(), cfg)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.tb.Fatalf("restart %s: %v", cfg.ID, err)
	}
}

// Rejoin starts a stopped node again on its old addresses with its data
// directory wiped and without bootstrapping: a fresh server that waits to
// be added (ClusterService.AddNode) to the running cluster.
func (c *Cluster) Rejoin(i int) {
	c.tb.Helper()
	cfg := c.cfgs[i]
	if err := os.RemoveAll(cfg.Dir); err != nil {
		c.tb.Fatal(err)
	}
	cfg.Bootstrap = false
	c.cfgs[i] = cfg
	c.Restart(i)
}

// RaftAddr returns node i's Raft address.
func (c *Cluster) RaftAddr(i int) string { return c.cfgs[i].RaftAddr }

// APIAddr returns node i's API address.
func (c *Cluster) APIAddr(i int) string { return c.cfgs[i].APIAddr }

// SyncBuffer is a bytes.Buffer safe for concurrent writers, such as the
// loggers of a node's goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset forgets what was written.
func (s *SyncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
