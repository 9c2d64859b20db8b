package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/graft-cluster/graft/jepsen/proxy"
	"github.com/graft-cluster/graft/objstore/fakes3"
)

// edge is one `graft edge` process: a read-through cache in front of the
// nodes. Its upstream is the nodes' client proxies, so a partition or a
// stopped node affects it exactly as it affects a client; its object
// store is the object-store proxy, so bucket faults reach it as they reach
// the nodes.
type edge struct {
	idx  int
	id   string // "e1", ...
	addr string
	log  string

	// up[i] carries the edge's connections to node i's client proxy, and
	// s3 its connections to the object-store proxy: what PartitionEdge
	// cuts (the faults of the nodes and the bucket still reach the edge
	// behind them).
	up []*proxy.Proxy
	s3 *proxy.Proxy

	// op serializes KillEdge and RestartEdge.
	op   sync.Mutex
	mu   sync.Mutex
	proc *process
}

// edgeArgs returns edge e's arguments, without the binary.
func (c *Cluster) edgeArgs(e *edge) []string {
	up := make([]string, len(e.up))
	for i, p := range e.up {
		up[i] = c.Scheme() + p.Addr()
	}
	args := []string{
		"edge",
		"--listen", e.addr,
		"--upstream", strings.Join(up, ","),
	}
	if e.s3 != nil {
		u := fakes3.StoreURL("http://"+e.s3.Addr(), c.cfg.Bucket, "")
		if c.cfg.ObjectStoreQuery != "" {
			u += "&" + c.cfg.ObjectStoreQuery
		}
		args = append(args, "--object-store", u)
	}
	args = append(args, c.edgeSecurityArgs()...)
	return append(args, c.cfg.EdgeArgs...)
}

// setupEdges picks the edges' ports; it runs after the nodes' setup.
func (c *Cluster) setupEdges() error {
	if c.cfg.Edges == 0 {
		return nil
	}
	ports, err := freePorts(c.cfg.Edges)
	if err != nil {
		return err
	}
	for i, port := range ports {
		id := "e" + strconv.Itoa(i+1)
		e := &edge{
			idx:  i,
			id:   id,
			addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			log:  filepath.Join(c.cfg.Dir, id+".log"),
		}
		c.edges = append(c.edges, e) // before its proxies: Stop closes what was made
		for _, cp := range c.clientProxy {
			p, err := proxy.Listen(cp.Addr())
			if err != nil {
				return fmt.Errorf("start %s proxy: %w", id, err)
			}
			e.up = append(e.up, p)
		}
		if c.s3Proxy != nil {
			if e.s3, err = proxy.Listen(c.s3Proxy.Addr()); err != nil {
				return fmt.Errorf("start %s proxy: %w", id, err)
			}
		}
	}
	return nil
}

// edgeProxies returns every edge's proxies.
func (c *Cluster) edgeProxies() []*proxy.Proxy {
	var out []*proxy.Proxy
	for _, e := range c.edges {
		out = append(out, e.up...)
		if e.s3 != nil {
			out = append(out, e.s3)
		}
	}
	return out
}

func (c *Cluster) edge(i int) (*edge, error) {
	if i < 0 || i >= len(c.edges) {
		return nil, fmt.Errorf("%w: edge %d of %d", ErrNoSuchEdge, i, len(c.edges))
	}
	return c.edges[i], nil
}

// KillEdge SIGKILLs edge i (an expected exit: the crashes checker ignores
// it). It fails with ErrNotRunning when the edge is not running.
func (c *Cluster) KillEdge(i int) error {
	e, err := c.edge(i)
	if err != nil {
		return fmt.Errorf("kill edge: %w", err)
	}
	e.op.Lock()
	defer e.op.Unlock()
	if err := c.checkLive(); err != nil {
		return fmt.Errorf("kill %s: %w", e.id, err)
	}
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	if !p.alive() {
		return fmt.Errorf("kill %s: %w", e.id, ErrNotRunning)
	}
	if err := p.kill(); err != nil {
		return fmt.Errorf("kill %s: %w", e.id, err)
	}
	c.log.Info("nemesis: killed edge", "edge", e.id, "pid", p.pid)
	return nil
}

// RestartEdge starts edge i again (same address and arguments, a cold
// cache) and waits until it listens; a running edge is left alone. It
// does not wait for /readyz: the edge may be cut off its upstreams.
func (c *Cluster) RestartEdge(i int) error {
	e, err := c.edge(i)
	if err != nil {
		return fmt.Errorf("restart edge: %w", err)
	}
	e.op.Lock()
	defer e.op.Unlock()
	if err := c.checkLive(); err != nil {
		return fmt.Errorf("restart %s: %w", e.id, err)
	}
	e.mu.Lock()
	running := e.proc.alive()
	e.mu.Unlock()
	if running {
		return nil
	}
	p, err := c.spawn(c.cfg.Binary, e.id, -1, e.log, c.edgeArgs(e))
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.proc = p
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.StartTimeout)
	defer cancel()
	if err := waitListening(ctx, p, e.addr, c.cfg.PollInterval); err != nil {
		return fmt.Errorf("restart %s: %w", e.id, err)
	}
	c.log.Info("nemesis: restarted edge", "edge", e.id, "pid", p.pid)
	return nil
}

// PartitionEdge cuts (true) or restores (false) edge i's links to every
// node and to the object store: connections hang, as in a partition. Its
// clients still reach it.
func (c *Cluster) PartitionEdge(i int, cut bool) error {
	e, err := c.edge(i)
	if err != nil {
		return fmt.Errorf("partition edge: %w", err)
	}
	m := proxy.Pass
	if cut {
		m = proxy.Drop
	}
	var errs []error
	for _, p := range e.up {
		errs = append(errs, p.SetMode(m))
	}
	if e.s3 != nil {
		errs = append(errs, e.s3.SetMode(m))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("partition %s: %w", e.id, err)
	}
	c.log.Info("nemesis: edge links", "edge", e.id, "mode", m)
	return nil
}

// startEdges starts every edge and waits until each listens and answers
// /readyz with 200 (it sees a leader through its upstream).
func (c *Cluster) startEdges(ctx context.Context) error {
	for _, e := range c.edges {
		p, err := c.spawn(c.cfg.Binary, e.id, -1, e.log, c.edgeArgs(e))
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.proc = p
		e.mu.Unlock()
		sctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
		err = waitListening(sctx, p, e.addr, c.cfg.PollInterval)
		if err == nil {
			err = c.waitEdgeReady(sctx, e)
		}
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) waitEdgeReady(ctx context.Context, e *edge) error {
	for {
		err := c.checkURLReady(ctx, e.id, c.Scheme()+e.addr+"/readyz")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s ready: %w", e.id, errors.Join(ctx.Err(), err))
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

func (c *Cluster) checkURLReady(ctx context.Context, name, url string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("check %s ready: %w", name, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("check %s ready: %w", name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check %s ready: status %s", name, resp.Status)
	}
	return nil
}

// stopEdges stops every edge (SIGTERM to its process group, SIGKILL after
// Config.StopTimeout) and waits until each is reaped.
func (c *Cluster) stopEdges(ctx context.Context) error {
	errs := make([]error, len(c.edges))
	var wg sync.WaitGroup
	for i, e := range c.edges {
		e.mu.Lock()
		p := e.proc
		e.mu.Unlock()
		if p == nil {
			continue
		}
		wg.Go(func() {
			killed, err := p.stop(ctx, c.cfg.StopTimeout)
			if err != nil {
				errs[i] = fmt.Errorf("stop %s: %w", e.id, err)
			}
			if killed {
				c.log.Warn("edge did not stop in time; killed", "edge", e.id, "pid", p.pid)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Edges returns the number of edges.
func (c *Cluster) Edges() int { return len(c.edges) }

// EdgeEndpoints returns, per edge, its base URL (no proxy in front: the
// faults are between the edge and the nodes).
func (c *Cluster) EdgeEndpoints() []string {
	out := make([]string, len(c.edges))
	for i, e := range c.edges {
		out[i] = c.Scheme() + e.addr
	}
	return out
}

// EdgeLogPath returns edge i's log file, or "".
func (c *Cluster) EdgeLogPath(i int) string {
	if i < 0 || i >= len(c.edges) {
		return ""
	}
	return c.edges[i].log
}

// EdgePID returns the process ID of edge i's live process, or 0.
func (c *Cluster) EdgePID(i int) int {
	if i < 0 || i >= len(c.edges) {
		return 0
	}
	e := c.edges[i]
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc.alive() {
		return e.proc.pid
	}
	return 0
}

// EdgeMetrics returns edge i's /metrics page (Prometheus text).
func (c *Cluster) EdgeMetrics(ctx context.Context, i int) (string, error) {
	if i < 0 || i >= len(c.edges) {
		return "", fmt.Errorf("edge metrics: no edge %d", i)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Scheme()+c.edges[i].addr+"/metrics", nil)
	if err != nil {
		return "", fmt.Errorf("edge metrics: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("edge metrics %s: %w", c.edges[i].id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", fmt.Errorf("edge metrics %s: %w", c.edges[i].id, err)
	}
	return string(b), nil
}
