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

	mu   sync.Mutex
	proc *process
}

// edgeArgs returns edge e's arguments, without the binary.
func (c *Cluster) edgeArgs(e *edge) []string {
	args := []string{
		"edge",
		"--listen", e.addr,
		"--upstream", strings.Join(c.ClientEndpoints(), ","),
	}
	if !c.cfg.NoObjectStore {
		args = append(args, "--object-store", c.ObjectStoreURL())
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
		c.edges = append(c.edges, &edge{
			idx:  i,
			id:   id,
			addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			log:  filepath.Join(c.cfg.Dir, id+".log"),
		})
	}
	return nil
}

// startEdges starts every edge and waits until each listens and answers
// /readyz with 200 (it sees a leader through its upstream).
func (c *Cluster) startEdges(ctx context.Context) error {
	for _, e := range c.edges {
		p, err := c.spawn(e.id, -1, e.log, c.edgeArgs(e))
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
