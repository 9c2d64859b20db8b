package devcluster

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
	c := &Cluster{
		cfg: cfg,
		log: log,
		http: &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			Timeout:   readyRequestTimeout,
		},
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
	return c, nil
}

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
		eps[i] = "http://" + n.apiAddr
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
	return append(args, c.cfg.ExtraArgs...)
}

// Run starts every node and supervises them until ctx is done: a node that
// exits is logged and restarted while the others keep running. When ctx is
// done it sends SIGTERM to every node, SIGKILL after Config.StopTimeout to
// those still alive, and returns nil once all of them are reaped.
//
// Run returns an error without supervising when a state directory cannot be
// created or a node cannot be started the first time (the nodes already
// started are stopped first), and ErrRunning when it is already running.
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.apiAddr+"/readyz", nil)
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
