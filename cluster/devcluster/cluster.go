package devcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/edge"
	"github.com/graft-cluster/graft/objstore/fakes3"
	"github.com/graft-cluster/graft/tlsutil"
)

// readyRequestTimeout bounds one /readyz request, so that a node that accepts
// connections but never answers does not stall WaitReady past its next poll
// by more than this.
const readyRequestTimeout = 2 * time.Second

// Cluster supervises the node processes of one development cluster.
// Create it with New; its methods are safe for concurrent use.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	nodes []*node
	http  *http.Client

	scheme      string         // "http://", or "https://" with TLS
	caPool      *x509.CertPool // the CA of Config.TLS, nil without
	objectStore string         // the nodes' --object-store
	s3          S3Server       // the embedded S3 server; zero when external
	s3Addr      string         // its listen address; "" when external
	edgeAddr    string         // the edge's listen address; "" without an edge

	outMu sync.Mutex // serializes line writes to cfg.LogOutput

	mu      sync.Mutex
	running bool
}

// New validates cfg and returns a Cluster that is not running yet.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.ExtraArgs = append([]string(nil), cfg.ExtraArgs...)
	if cfg.LogOutput == nil {
		cfg.LogOutput = os.Stderr
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &Cluster{
		cfg:    cfg,
		log:    log,
		http:   &http.Client{Transport: tr, Timeout: readyRequestTimeout},
		scheme: "http://",
	}
	if cfg.TLS.Enabled() {
		pool, err := tlsutil.LoadPool(cfg.TLS.CA)
		if err != nil {
			return nil, err
		}
		c.caPool, c.scheme = pool, "https://"
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	for i := 1; i <= cfg.Nodes; i++ {
		id := "n" + strconv.Itoa(i)
		c.nodes = append(c.nodes, &node{
			c:        c,
			id:       id,
			dir:      filepath.Join(cfg.Dir, id),
			apiAddr:  net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.PortBase+i)),
			raftAddr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.PortBase+RaftPortOffset+i)),
			log:      log.With("node", id),
		})
	}
	c.objectStore = cfg.ObjectStore
	if cfg.ObjectStore == "" {
		c.s3Addr = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.s3Port()))
		c.s3 = S3Server{
			Endpoint: "http://" + c.s3Addr,
			Bucket:   cfg.S3Bucket,
			Dir:      filepath.Join(cfg.Dir, S3DirName),
		}
		c.objectStore = fakes3.StoreURL(c.s3.Endpoint, c.s3.Bucket, "")
	}
	if p := cfg.edgePort(); p > 0 {
		c.edgeAddr = net.JoinHostPort(cfg.Host, strconv.Itoa(p))
	}
	return c, nil
}

// EdgeEndpoint returns the edge's base URL, http://HOST:PORT, or "" when
// Config.EdgePort is -1.
func (c *Cluster) EdgeEndpoint() string {
	if c.edgeAddr == "" {
		return ""
	}
	return c.scheme + c.edgeAddr
}

// S3Server describes the S3 server a Cluster embeds when Config.ObjectStore
// is empty.
type S3Server struct {
	// Endpoint is the server's base URL, http://HOST:PORT.
	Endpoint string
	// Bucket is the bucket the nodes use, Config.S3Bucket.
	Bucket string
	// Dir is the directory holding its objects, Config.Dir/s3.
	Dir string
}

// EmbeddedS3 describes the embedded S3 server, which Run starts before the
// nodes and stops after them; ok is false when Config.ObjectStore names an
// external store instead.
func (c *Cluster) EmbeddedS3() (s S3Server, ok bool) {
	return c.s3, c.s3Addr != ""
}

// ObjectStore returns the URL every node gets as --object-store:
// Config.ObjectStore, or the embedded S3 server's bucket.
func (c *Cluster) ObjectStore() string { return c.objectStore }

// NodeIDs returns the node IDs, "n1".."nN", in order.
func (c *Cluster) NodeIDs() []string {
	ids := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		ids[i] = n.id
	}
	return ids
}

// Endpoints returns each node's client API base URL, http://HOST:PORT, in
// NodeIDs order.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		eps[i] = c.scheme + n.apiAddr
	}
	return eps
}

// PID returns the process ID of node id's current process, or 0 when it is
// not running or id is unknown.
func (c *Cluster) PID(id string) int {
	for _, n := range c.nodes {
		if n.id == id {
			return n.currentPID()
		}
	}
	return 0
}

// args returns node n's command-line arguments, without the binary.
func (c *Cluster) args(n *node) []string {
	args := []string{
		"node",
		"--id", n.id,
		"--dir", n.dir,
		"--raft-addr", n.raftAddr,
		"--api-addr", n.apiAddr,
		"--bootstrap",
	}
	for _, p := range c.nodes {
		args = append(args, "--peer", p.id+","+p.raftAddr+","+p.apiAddr)
	}
	args = append(args, "--object-store", c.objectStore)
	if t := c.cfg.TLS; t.Enabled() {
		args = append(args, "--tls-cert", t.Cert, "--tls-key", t.Key, "--tls-ca", t.CA)
	}
	if c.cfg.AuthKey != "" {
		args = append(args, "--auth-key", c.cfg.AuthKey)
	}
	return append(args, c.cfg.ExtraArgs...)
}

// Run starts the embedded S3 server (unless Config.ObjectStore is set),
// then every node, and supervises them until ctx is done: a node that exits
// is logged and restarted while the others keep running. When ctx is done it
// sends SIGTERM to every node, SIGKILL after Config.StopTimeout to those
// still alive, and once all of them are reaped stops the S3 server (so that
// nodes can still flush while they stop) and returns nil.
//
// Run returns an error without supervising when a state directory cannot be
// created, the S3 server cannot start (its port is taken, or another
// supervisor has its directory open) or a node cannot be started the first
// time (what was started is stopped first), and ErrRunning when it is
// already running.
func (c *Cluster) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ErrRunning
	}
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()

	if ctx.Err() != nil {
		return nil
	}
	for _, n := range c.nodes {
		if err := n.openLog(); err != nil {
			closeLogs(c.nodes)
			return err
		}
	}
	defer closeLogs(c.nodes)

	s3, err := c.startS3(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer c.stopS3(s3) // after the nodes: deferred calls run last first

	stopEdge, err := c.startEdge(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer stopEdge() // after the nodes, before the S3 server

	// Start every node before supervising any, so that a broken binary or
	// argument fails Run instead of crash-looping.
	started := make([]*process, 0, len(c.nodes))
	for _, n := range c.nodes {
		p, err := n.start()
		if err != nil {
			for i, p := range started {
				c.nodes[i].stop(p)
			}
			return err
		}
		started = append(started, p)
	}

	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { n.supervise(ctx, started[i]) })
	}
	wg.Wait()
	return nil
}

// startS3 starts the embedded S3 server; it returns nil, nil when the
// object store is external.
func (c *Cluster) startS3(ctx context.Context) (*fakes3.Server, error) {
	if c.s3Addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.s3Addr)
	if err != nil {
		return nil, fmt.Errorf("start embedded s3 server: %w", err)
	}
	srv, err := fakes3.Serve(ctx, ln, c.s3.Dir, c.s3.Bucket, c.log.With("server", "s3"))
	if err != nil {
		return nil, fmt.Errorf("start embedded s3 server: %w", err)
	}
	srv.SetLatency(c.cfg.S3Latency)
	c.log.Info("s3 server started", "endpoint", srv.Endpoint(), "bucket", srv.Bucket(), "dir", srv.Dir(), "latency", c.cfg.S3Latency)
	return srv, nil
}

// startEdge serves the edge in this process, upstream the nodes, reading
// the object store; the returned func stops it.
func (c *Cluster) startEdge(ctx context.Context) (stop func(), err error) {
	if c.edgeAddr == "" {
		return func() {}, nil
	}
	cfg := edge.DefaultConfig()
	cfg.Listen = c.edgeAddr
	for _, n := range c.nodes {
		cfg.Upstream = append(cfg.Upstream, c.scheme+n.apiAddr)
	}
	if c.cfg.TLS.Enabled() {
		h, err := tlsutil.Load(c.cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("start edge: %w", err)
		}
		cfg.TLS, cfg.UpstreamCAs = h, c.caPool
	}
	if c.cfg.AuthKey != "" {
		pub, err := auth.LoadPublicKey(c.cfg.AuthKey)
		if err != nil {
			return nil, fmt.Errorf("start edge: %w", err)
		}
		cfg.Auth = auth.NewVerifier(pub, nil)
	}
	cfg.ObjectStore = c.objectStore
	cfg.CacheBytes = c.cfg.EdgeCacheBytes
	cfg.Logger = c.log.With("server", "edge")
	ln, err := net.Listen("tcp", c.edgeAddr)
	if err != nil {
		return nil, fmt.Errorf("start edge: %w", err)
	}
	e, err := edge.New(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start edge: %w", err)
	}
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- e.Serve(ectx, ln) }()
	c.log.Info("edge started", "endpoint", c.EdgeEndpoint(), "cache_bytes", cfg.CacheBytes)
	return func() {
		cancel()
		if err := <-done; err != nil {
			c.log.Warn("edge stopped", "err", err)
		}
		_ = e.Close()
		c.log.Info("edge stopped", "endpoint", c.EdgeEndpoint())
	}, nil
}

// stopS3 stops the embedded S3 server, if any, dropping requests still in
// flight after Config.StopTimeout.
func (c *Cluster) stopS3(srv *fakes3.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.StopTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		c.log.Warn("stop s3 server", "err", err)
		return
	}
	c.log.Info("s3 server stopped", "endpoint", srv.Endpoint())
}

func closeLogs(nodes []*node) {
	for _, n := range nodes {
		n.closeLog()
	}
}

// WaitReady polls GET /readyz on every node every Config.ReadyPollInterval
// until all of them answer 200 in the same round, or ctx is done. It does
// not need Run to have started yet.
func (c *Cluster) WaitReady(ctx context.Context) error {
	defer c.http.CloseIdleConnections()
	tick := time.NewTicker(c.cfg.ReadyPollInterval)
	defer tick.Stop()
	errs := make([]error, len(c.nodes))
	for {
		var wg sync.WaitGroup
		for i, n := range c.nodes {
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
		case <-tick.C:
		}
	}
}

// checkReady asks node n once whether it is ready.
func (c *Cluster) checkReady(ctx context.Context, n *node) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+n.apiAddr+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("check %s ready: %w", n.id, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("check %s ready: %w", n.id, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check %s ready: status %s", n.id, resp.Status)
	}
	return nil
}
