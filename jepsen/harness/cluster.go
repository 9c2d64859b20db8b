package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/jepsen/proxy"
	"github.com/graft-cluster/graft/objstore/fakes3"
)

// Cluster is a running cluster of graft processes behind proxies. Create
// it with Start and end it with Stop. Its methods are safe for concurrent
// use.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client // the harness's own requests, to real addresses

	nodes []*node
	// raftProxy[i][j] and apiProxy[i][j] carry node i's connections to
	// node j; nil when i == j.
	raftProxy   [][]*proxy.Proxy
	apiProxy    [][]*proxy.Proxy
	clientProxy []*proxy.Proxy
	edges       []*edge
	sec         *security // nil unless Config.Secure

	// The object store; zero without one.
	s3Addr  string
	s3Dir   string
	s3Log   string
	s3Proxy *proxy.Proxy
	s3Mu    sync.Mutex
	s3Proc  *process

	wg sync.WaitGroup // every process's reaper

	// ctx is cancelled when Stop begins, so that operations in flight
	// (restarts waiting for a port, membership changes) give up.
	ctx    context.Context
	cancel context.CancelFunc

	exitMu sync.Mutex
	exits  []Exit

	stopMu  sync.Mutex
	stopped bool
}

// node is one member: its fixed identity and its current process.
type node struct {
	idx      int
	id       string
	dir      string
	raftAddr string
	apiAddr  string
	cluster  graftv1connect.ClusterServiceClient // to apiAddr, bypassing proxies

	// op serializes the operations on this node (kill, restart, pause...).
	op sync.Mutex

	mu        sync.Mutex // guards the fields below
	proc      *process   // current or last process; nil before the first start
	paused    bool
	bootstrap bool   // false once the node was wiped and joined with AddNode
	binary    string // the executable its starts run: Binary, or UpgradeBinary once upgraded
}

func (n *node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Start starts the object store (unless cfg.NoObjectStore), the proxies
// and cfg.Nodes bootstrapping nodes, and waits until every node is ready
// and a leader is agreed on. ctx bounds the start only; the processes run
// until Stop. On error, everything started is stopped again.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.NodeArgs = append([]string(nil), cfg.NodeArgs...)
	cfg.Env = append([]string(nil), cfg.Env...)
	cfg.EdgeArgs = append([]string(nil), cfg.EdgeArgs...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("%w: binary: %w", ErrInvalidConfig, err)
	}
	if cfg.UpgradeBinary != "" {
		if _, err := os.Stat(cfg.UpgradeBinary); err != nil {
			return nil, fmt.Errorf("%w: upgrade binary: %w", ErrInvalidConfig, err)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Dir, err)
	}
	c := &Cluster{
		cfg:  cfg,
		log:  log,
		http: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
			defer cancel()
			_ = c.Stop(ctx)
		}
	}()
	if err := c.setup(); err != nil {
		return nil, err
	}
	if err := c.setupEdges(); err != nil {
		return nil, err
	}
	log.Info("starting cluster", "nodes", cfg.Nodes, "dir", cfg.Dir, "object_store", !cfg.NoObjectStore)
	if !cfg.NoObjectStore {
		if err := c.startS3(ctx); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := c.startNode(ctx, n); err != nil {
			return nil, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.startEdges(ctx); err != nil {
		return nil, err
	}
	log.Info("cluster ready", "leader", c.nodes[leader].id, "edges", len(c.edges))
	ok = true
	return c, nil
}

// setup picks the ports and creates the directories and proxies.
func (c *Cluster) setup() error {
	if err := c.setupSecurity(); err != nil {
		return err
	}
	n := c.cfg.Nodes
	ports, err := freePorts(2*n + 1)
	if err != nil {
		return err
	}
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	for i := range n {
		id := "n" + strconv.Itoa(i+1)
		nd := &node{
			idx:       i,
			id:        id,
			dir:       filepath.Join(c.cfg.Dir, id),
			raftAddr:  addr(ports[2*i]),
			apiAddr:   addr(ports[2*i+1]),
			bootstrap: true,
			binary:    c.cfg.Binary,
		}
		nd.cluster = graftv1connect.NewClusterServiceClient(c.http, c.Scheme()+nd.apiAddr, c.connectOptions()...)
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return fmt.Errorf("create %s dir: %w", id, err)
		}
		c.nodes = append(c.nodes, nd)
	}
	listen := func(target string) (*proxy.Proxy, error) {
		p, err := proxy.Listen(target)
		if err != nil {
			return nil, fmt.Errorf("start proxy: %w", err)
		}
		return p, nil
	}
	c.raftProxy = make([][]*proxy.Proxy, n)
	c.apiProxy = make([][]*proxy.Proxy, n)
	for i := range n {
		c.raftProxy[i] = make([]*proxy.Proxy, n)
		c.apiProxy[i] = make([]*proxy.Proxy, n)
		for j, to := range c.nodes {
			if i == j {
				continue
			}
			if c.raftProxy[i][j], err = listen(to.raftAddr); err != nil {
				return err
			}
			if c.apiProxy[i][j], err = listen(to.apiAddr); err != nil {
				return err
			}
		}
		p, err := listen(c.nodes[i].apiAddr)
		if err != nil {
			return err
		}
		c.clientProxy = append(c.clientProxy, p)
	}
	if !c.cfg.NoObjectStore {
		c.s3Addr = addr(ports[2*n])
		c.s3Dir = filepath.Join(c.cfg.Dir, "s3")
		c.s3Log = filepath.Join(c.cfg.Dir, "s3.log")
		if c.s3Proxy, err = listen(c.s3Addr); err != nil {
			return err
		}
	}
	return nil
}

// startS3 starts `graft s3` and waits until it listens.
func (c *Cluster) startS3(ctx context.Context) error {
	args := []string{"s3", "--dir", c.s3Dir, "--addr", c.s3Addr, "--bucket", c.cfg.Bucket, "--fault-admin"}
	p, err := c.spawn(c.cfg.Binary, "s3", -1, c.s3Log, args)
	if err != nil {
		return err
	}
	c.s3Mu.Lock()
	c.s3Proc = p
	c.s3Mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	return waitListening(ctx, p, c.s3Addr, c.cfg.PollInterval)
}

// nodeArgs returns node n's arguments, without the binary.
func (c *Cluster) nodeArgs(n *node) []string {
	args := []string{
		"node",
		"--id", n.id,
		"--dir", n.dir,
		"--raft-addr", n.raftAddr,
		"--api-addr", n.apiAddr,
	}
	n.mu.Lock()
	if n.bootstrap {
		args = append(args, "--bootstrap")
	}
	n.mu.Unlock()
	for _, p := range c.nodes {
		args = append(args, "--peer", p.id+","+p.raftAddr+","+p.apiAddr)
	}
	for j, p := range c.nodes {
		if j == n.idx {
			// Itself, at its real addresses: hashicorp/raft looks up the
			// local ID in the dial overrides for every RPC header it
			// sends, and cluster's lookup logs a warning for each miss.
			args = append(args, "--dial", p.id+","+p.raftAddr+","+p.apiAddr)
			continue
		}
		args = append(args, "--dial", p.id+","+c.raftProxy[n.idx][j].Addr()+","+c.apiProxy[n.idx][j].Addr())
	}
	if !c.cfg.NoObjectStore {
		args = append(args, "--object-store", c.ObjectStoreURL())
	}
	args = append(args, c.nodeSecurityArgs()...)
	args = append(args,
		"--raft-heartbeat-timeout", c.cfg.RaftHeartbeatTimeout.String(),
		"--raft-election-timeout", c.cfg.RaftElectionTimeout.String(),
	)
	return append(args, c.cfg.NodeArgs...)
}

// startNode starts a process for n and waits until it listens on its API
// address. The caller holds n.op or is Start.
func (c *Cluster) startNode(ctx context.Context, n *node) error {
	if err := c.checkLive(); err != nil {
		return err
	}
	if n.current().alive() {
		return fmt.Errorf("start %s: %w", n.id, ErrRunning)
	}
	n.mu.Lock()
	bin := n.binary
	n.mu.Unlock()
	p, err := c.spawn(bin, n.id, n.idx, filepath.Join(n.dir, "node.log"), c.nodeArgs(n))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.proc, n.paused = p, false
	n.mu.Unlock()
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancelTimeout()
	return waitListening(ctx, p, n.apiAddr, c.cfg.PollInterval)
}

// opContext returns ctx, also cancelled when Stop begins.
func (c *Cluster) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

func (c *Cluster) checkLive() error {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopped {
		return ErrStopped
	}
	return nil
}

func (c *Cluster) node(i int) (*node, error) {
	if i < 0 || i >= len(c.nodes) {
		return nil, fmt.Errorf("%w: %d (have %d)", ErrNoNode, i, len(c.nodes))
	}
	return c.nodes[i], nil
}

// WaitReady polls every running node's GET /readyz (200 once it knows a
// leader) until all of them answer 200 in the same round, or ctx is done.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for {
		errs := make([]error, len(c.nodes))
		var wg sync.WaitGroup
		for i, n := range c.nodes {
			if !n.current().alive() {
				continue
			}
			wg.Go(func() { errs[i] = c.checkReady(ctx, n) })
		}
		wg.Wait()
		err := errors.Join(errs...)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for ready nodes: %w", errors.Join(ctx.Err(), err))
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

func (c *Cluster) checkReady(ctx context.Context, n *node) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Scheme()+n.apiAddr+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("check %s ready: %w", n.id, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("check %s ready: %w", n.id, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check %s ready: status %s", n.id, resp.Status)
	}
	return nil
}

// Stop ends the cluster: the edges first (SIGTERM, SIGKILL after
// Config.StopTimeout), then SIGTERM to every node at once (a leader hands
// over and flushes), SIGKILL to those still running after
// Config.StopTimeout or when ctx is done; then the object store the same
// way, then the proxies. It returns once every process is reaped. Later
// calls return nil. Links are left as they are: a leader that cannot reach
// the object store spends its FlushOnLeave (10s) trying before it exits,
// so heal first for a graceful stop, or pass a short ctx.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopMu.Lock()
	if c.stopped {
		c.stopMu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.stopped = true
	c.stopMu.Unlock()
	c.cancel()
	c.log.Info("stopping cluster")

	// The edges first: they are clients of the nodes.
	edgeErr := c.stopEdges(ctx)
	// Take every node's op lock, so that no restart races with the stop.
	for _, n := range c.nodes {
		n.op.Lock()
		defer n.op.Unlock()
	}
	errs := make([]error, len(c.nodes)+2)
	errs[len(c.nodes)+1] = edgeErr
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		p := n.current()
		if p == nil {
			continue
		}
		wg.Go(func() {
			killed, err := p.stop(ctx, c.cfg.StopTimeout)
			if err != nil {
				errs[i] = fmt.Errorf("stop %s: %w", n.id, err)
			}
			if killed {
				c.log.Warn("node did not stop in time; killed", "node", n.id, "pid", p.pid)
			}
		})
	}
	wg.Wait()
	c.s3Mu.Lock()
	s3 := c.s3Proc
	c.s3Mu.Unlock()
	if s3 != nil {
		if _, err := s3.stop(ctx, c.cfg.StopTimeout); err != nil {
			errs[len(c.nodes)] = fmt.Errorf("stop s3: %w", err)
		}
	}
	c.wg.Wait()
	for _, p := range c.allProxies() {
		if err := p.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.http.CloseIdleConnections()
	c.log.Info("cluster stopped")
	return errors.Join(errs...)
}

// allProxies returns every proxy created so far.
func (c *Cluster) allProxies() []*proxy.Proxy {
	var out []*proxy.Proxy
	for i := range c.raftProxy {
		for j := range c.raftProxy[i] {
			for _, p := range []*proxy.Proxy{c.raftProxy[i][j], c.apiProxy[i][j]} {
				if p != nil {
					out = append(out, p)
				}
			}
		}
	}
	for _, p := range c.clientProxy {
		if p != nil {
			out = append(out, p)
		}
	}
	if c.s3Proxy != nil {
		out = append(out, c.s3Proxy)
	}
	return append(out, c.edgeProxies()...)
}

// Nodes returns the number of nodes.
func (c *Cluster) Nodes() int { return len(c.nodes) }

// NodeID returns node i's Raft ID, "n{i+1}", or "" when i is out of range.
func (c *Cluster) NodeID(i int) string {
	if n, err := c.node(i); err == nil {
		return n.id
	}
	return ""
}

// NodeIndex returns the index of the node with Raft ID id, or -1.
func (c *Cluster) NodeIndex(id string) int {
	for _, n := range c.nodes {
		if n.id == id {
			return n.idx
		}
	}
	return -1
}

// NodeDir returns node i's data directory (its node.log is in it).
func (c *Cluster) NodeDir(i int) string {
	if n, err := c.node(i); err == nil {
		return n.dir
	}
	return ""
}

// LogPath returns node i's log file, or the object store's for -1 ("" when
// there is none).
func (c *Cluster) LogPath(i int) string {
	if i == -1 {
		return c.s3Log
	}
	if n, err := c.node(i); err == nil {
		return filepath.Join(n.dir, "node.log")
	}
	return ""
}

// ClientEndpoints returns, per node, the base URL clients use to reach it
// through its client proxy.
func (c *Cluster) ClientEndpoints() []string {
	out := make([]string, len(c.clientProxy))
	for i, p := range c.clientProxy {
		out[i] = c.Scheme() + p.Addr()
	}
	return out
}

// Endpoints returns, per node, the base URL of its real client API, which
// no fault touches: for the harness and for final checks.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = c.Scheme() + n.apiAddr
	}
	return out
}

// RaftAddr and APIAddr return node i's real (advertised) addresses.
func (c *Cluster) RaftAddr(i int) string {
	if n, err := c.node(i); err == nil {
		return n.raftAddr
	}
	return ""
}

// APIAddr returns node i's real client API address.
func (c *Cluster) APIAddr(i int) string {
	if n, err := c.node(i); err == nil {
		return n.apiAddr
	}
	return ""
}

// ObjectStoreURL returns the --object-store URL the nodes use, through the
// object-store proxy; "" without an object store.
func (c *Cluster) ObjectStoreURL() string {
	if c.s3Proxy == nil {
		return ""
	}
	u := fakes3.StoreURL("http://"+c.s3Proxy.Addr(), c.cfg.Bucket, "")
	if c.cfg.ObjectStoreQuery != "" {
		u += "&" + c.cfg.ObjectStoreQuery
	}
	return u
}

// DirectObjectStoreURL returns the object store's URL bypassing the proxy,
// for final checks; "" without an object store.
func (c *Cluster) DirectObjectStoreURL() string {
	if c.s3Addr == "" {
		return ""
	}
	return fakes3.StoreURL("http://"+c.s3Addr, c.cfg.Bucket, "")
}

// PID returns the process ID of node i's live process (the object store's
// for -1), or 0.
func (c *Cluster) PID(i int) int {
	if i == -1 {
		c.s3Mu.Lock()
		defer c.s3Mu.Unlock()
		if c.s3Proc.alive() {
			return c.s3Proc.pid
		}
		return 0
	}
	n, err := c.node(i)
	if err != nil {
		return 0
	}
	if p := n.current(); p.alive() {
		return p.pid
	}
	return 0
}

// Running reports whether node i has a live process (paused counts).
func (c *Cluster) Running(i int) bool {
	n, err := c.node(i)
	return err == nil && n.current().alive()
}

// Paused reports whether node i is stopped with SIGSTOP.
func (c *Cluster) Paused(i int) bool {
	n, err := c.node(i)
	if err != nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused && n.proc.alive()
}

// UnexpectedExits returns the process exits the harness did not cause, in
// order: crashes, failed starts, race reports (status 66 under -race).
func (c *Cluster) UnexpectedExits() []Exit {
	c.exitMu.Lock()
	defer c.exitMu.Unlock()
	return append([]Exit(nil), c.exits...)
}
