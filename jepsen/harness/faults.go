package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/graft-cluster/graft/jepsen/proxy"
)

// Partition cuts the network between groups of nodes: both the Raft and
// the API proxies between nodes of different groups Drop, those within a
// group Pass. A node in no group is alone in its own. Delays are kept.
func (c *Cluster) Partition(groups [][]int) error {
	group := make([]int, len(c.nodes))
	for i := range group {
		group[i] = -1 - i // alone unless listed
	}
	for g, members := range groups {
		for _, i := range members {
			if _, err := c.node(i); err != nil {
				return fmt.Errorf("partition %v: %w", groups, err)
			}
			if group[i] >= 0 {
				return fmt.Errorf("partition %v: node %d is in two groups", groups, i)
			}
			group[i] = g
		}
	}
	var errs []error
	for i := range c.nodes {
		for j := range c.nodes {
			if i == j {
				continue
			}
			m := proxy.Pass
			if group[i] != group[j] {
				m = proxy.Drop
			}
			errs = append(errs, c.setLink(i, j, m))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("partition %v: %w", groups, err)
	}
	c.log.Info("nemesis: partition", "groups", c.groupIDs(groups))
	return nil
}

func (c *Cluster) groupIDs(groups [][]int) [][]string {
	out := make([][]string, len(groups))
	for g, members := range groups {
		for _, i := range members {
			out[g] = append(out[g], c.nodes[i].id)
		}
	}
	return out
}

// SetLink sets the mode of node from's Raft and API links to node to only
// (one direction of connection set-up: replies on those connections are
// held or cut too, but to's own connections to from are untouched).
func (c *Cluster) SetLink(from, to int, m proxy.Mode) error {
	if _, err := c.node(from); err != nil {
		return fmt.Errorf("set link: %w", err)
	}
	if _, err := c.node(to); err != nil {
		return fmt.Errorf("set link: %w", err)
	}
	if from == to {
		return fmt.Errorf("set link %d -> %d: %w: a node has no link to itself", from, to, ErrNoNode)
	}
	if err := c.setLink(from, to, m); err != nil {
		return err
	}
	c.log.Info("nemesis: set link", "from", c.nodes[from].id, "to", c.nodes[to].id, "mode", m)
	return nil
}

func (c *Cluster) setLink(from, to int, m proxy.Mode) error {
	return errors.Join(c.raftProxy[from][to].SetMode(m), c.apiProxy[from][to].SetMode(m))
}

// Heal sets every peer link (Raft and API) back to Pass with no delay.
// Client and object-store links are left as they are.
func (c *Cluster) Heal() error {
	var errs []error
	for _, p := range c.peerProxies() {
		errs = append(errs, p.SetMode(proxy.Pass), p.SetDelay(0, 0))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	c.log.Info("nemesis: heal")
	return nil
}

// SetLinkDelay delays every chunk on every peer link (Raft and API, both
// directions of each connection) by d plus up to jitter.
func (c *Cluster) SetLinkDelay(d, jitter time.Duration) error {
	var errs []error
	for _, p := range c.peerProxies() {
		errs = append(errs, p.SetDelay(d, jitter))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set link delay: %w", err)
	}
	c.log.Info("nemesis: link delay", "delay", d, "jitter", jitter)
	return nil
}

func (c *Cluster) peerProxies() []*proxy.Proxy {
	var out []*proxy.Proxy
	for i := range c.nodes {
		for j := range c.nodes {
			if i != j {
				out = append(out, c.raftProxy[i][j], c.apiProxy[i][j])
			}
		}
	}
	return out
}

// SetClientLink sets the mode of node i's client proxy.
func (c *Cluster) SetClientLink(i int, m proxy.Mode) error {
	if _, err := c.node(i); err != nil {
		return fmt.Errorf("set client link: %w", err)
	}
	if err := c.clientProxy[i].SetMode(m); err != nil {
		return fmt.Errorf("set client link %s: %w", c.nodes[i].id, err)
	}
	c.log.Info("nemesis: client link", "node", c.nodes[i].id, "mode", m)
	return nil
}

// SetClientDelay delays node i's client link.
func (c *Cluster) SetClientDelay(i int, d, jitter time.Duration) error {
	if _, err := c.node(i); err != nil {
		return fmt.Errorf("set client delay: %w", err)
	}
	if err := c.clientProxy[i].SetDelay(d, jitter); err != nil {
		return fmt.Errorf("set client delay %s: %w", c.nodes[i].id, err)
	}
	c.log.Info("nemesis: client delay", "node", c.nodes[i].id, "delay", d, "jitter", jitter)
	return nil
}

// S3 sets the mode of the object-store link every node uses.
func (c *Cluster) S3(m proxy.Mode) error {
	if c.s3Proxy == nil {
		return fmt.Errorf("s3 link: %w", ErrNoObjectStore)
	}
	if err := c.s3Proxy.SetMode(m); err != nil {
		return fmt.Errorf("s3 link: %w", err)
	}
	c.log.Info("nemesis: s3 link", "mode", m)
	return nil
}

// S3Delay delays every chunk on the object-store link by d.
func (c *Cluster) S3Delay(d time.Duration) error {
	if c.s3Proxy == nil {
		return fmt.Errorf("s3 delay: %w", ErrNoObjectStore)
	}
	if err := c.s3Proxy.SetDelay(d, 0); err != nil {
		return fmt.Errorf("s3 delay: %w", err)
	}
	c.log.Info("nemesis: s3 delay", "delay", d)
	return nil
}

// RaftProxy and APIProxy return the proxy carrying node from's Raft or API
// connections to node to (nil when from == to or out of range), for tests
// and nemeses that need more than the primitives here.
func (c *Cluster) RaftProxy(from, to int) *proxy.Proxy { return c.peerProxy(c.raftProxy, from, to) }

// APIProxy returns the proxy carrying node from's API connections to node to.
func (c *Cluster) APIProxy(from, to int) *proxy.Proxy { return c.peerProxy(c.apiProxy, from, to) }

func (c *Cluster) peerProxy(ps [][]*proxy.Proxy, from, to int) *proxy.Proxy {
	if _, err := c.node(from); err != nil {
		return nil
	}
	if _, err := c.node(to); err != nil {
		return nil
	}
	return ps[from][to]
}

// ClientProxy returns node i's client proxy, or nil.
func (c *Cluster) ClientProxy(i int) *proxy.Proxy {
	if _, err := c.node(i); err != nil {
		return nil
	}
	return c.clientProxy[i]
}

// S3Proxy returns the object-store proxy, nil without an object store.
func (c *Cluster) S3Proxy() *proxy.Proxy { return c.s3Proxy }

// Kill SIGKILLs node i's process group and waits until it is reaped.
func (c *Cluster) Kill(i int) error {
	n, err := c.node(i)
	if err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	return c.kill(n)
}

func (c *Cluster) kill(n *node) error {
	if err := c.checkLive(); err != nil {
		return fmt.Errorf("kill %s: %w", n.id, err)
	}
	p := n.current()
	if !p.alive() {
		return fmt.Errorf("kill %s: %w", n.id, ErrNotRunning)
	}
	if err := p.kill(); err != nil {
		return fmt.Errorf("kill %s: %w", n.id, err)
	}
	n.mu.Lock()
	n.paused = false
	n.mu.Unlock()
	c.log.Info("nemesis: killed node", "node", n.id, "pid", p.pid)
	return nil
}

// Restart starts node i again, with the same arguments and data directory,
// and waits until it listens on its API address (not until it has caught
// up: see WaitReady and Leader). It fails with ErrRunning when the node
// runs, and with ErrExited (naming its log) when the process dies first.
func (c *Cluster) Restart(i int) error {
	n, err := c.node(i)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	return c.restart(n)
}

func (c *Cluster) restart(n *node) error {
	if err := c.startNode(context.Background(), n); err != nil {
		return fmt.Errorf("restart %s: %w", n.id, err)
	}
	c.log.Info("nemesis: restarted node", "node", n.id, "pid", n.current().pid)
	return nil
}

// KillAll SIGKILLs every running node, concurrently.
func (c *Cluster) KillAll() error {
	return c.each(func(n *node) error {
		if !n.current().alive() {
			return nil
		}
		return c.kill(n)
	})
}

// RestartAll restarts every node that is not running, concurrently.
func (c *Cluster) RestartAll() error {
	return c.each(func(n *node) error {
		if n.current().alive() {
			return nil
		}
		return c.restart(n)
	})
}

// each runs f on every node concurrently, holding each node's op lock.
func (c *Cluster) each(f func(*node) error) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() {
			n.op.Lock()
			defer n.op.Unlock()
			errs[i] = f(n)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Pause stops node i's process group with SIGSTOP: it keeps its sockets
// and state but does nothing, like a long GC pause or a frozen VM.
func (c *Cluster) Pause(i int) error { return c.pauseResume(i, true) }

// Resume continues a paused node with SIGCONT.
func (c *Cluster) Resume(i int) error { return c.pauseResume(i, false) }

func (c *Cluster) pauseResume(i int, pause bool) error {
	what, sig := "resume", syscall.SIGCONT
	if pause {
		what, sig = "pause", syscall.SIGSTOP
	}
	n, err := c.node(i)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n.op.Lock()
	defer n.op.Unlock()
	if err := c.checkLive(); err != nil {
		return fmt.Errorf("%s %s: %w", what, n.id, err)
	}
	p := n.current()
	if !p.alive() {
		return fmt.Errorf("%s %s: %w", what, n.id, ErrNotRunning)
	}
	if err := p.signal(sig); err != nil {
		return fmt.Errorf("%s %s: %w", what, n.id, err)
	}
	n.mu.Lock()
	n.paused = pause
	n.mu.Unlock()
	c.log.Info("nemesis: "+what+"d node", "node", n.id, "pid", p.pid)
	return nil
}
