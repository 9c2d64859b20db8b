package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
)

// errPaused is a NodeState.Err for a node stopped with SIGSTOP, which is
// not asked (the request would only time out).
var errPaused = errors.New("paused")

// NodeState is a node's view of itself and of the leader, as its
// ClusterService.Status (local) reports it over its real API address.
type NodeState struct {
	Index int
	ID    string
	// Leader is the ID of the leader the node knows, "" for none.
	Leader string
	// State is leader, follower, candidate or shutdown.
	State                                    string
	Term, AppliedIndex, CommitIndex, LastLog uint64
	// Err is why the node did not answer (not running, paused, timed out);
	// the other fields are then zero.
	Err error
}

// States asks every node for its own view, concurrently, each bounded by
// Config.RequestTimeout. Nodes that are down or paused are not asked.
func (c *Cluster) States(ctx context.Context) []NodeState {
	out := make([]NodeState, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		out[i] = NodeState{Index: i, ID: n.id}
		n.mu.Lock()
		alive, paused := n.proc.alive(), n.paused
		n.mu.Unlock()
		switch {
		case !alive:
			out[i].Err = ErrNotRunning
			continue
		case paused:
			out[i].Err = errPaused
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
			defer cancel()
			resp, err := n.cluster.Status(ctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
			if err != nil {
				out[i].Err = err
				return
			}
			nodes := resp.Msg.GetNodes()
			if len(nodes) != 1 {
				out[i].Err = fmt.Errorf("status of %s: %d nodes, want itself alone", n.id, len(nodes))
				return
			}
			s := nodes[0]
			out[i].Leader, out[i].State, out[i].Term = resp.Msg.GetLeaderId(), s.GetState(), s.GetTerm()
			out[i].AppliedIndex, out[i].CommitIndex, out[i].LastLog = s.GetAppliedIndex(), s.GetCommitIndex(), s.GetLastLogIndex()
		})
	}
	wg.Wait()
	return out
}

// describe summarizes states for errors and logs.
func describe(states []NodeState) string {
	var parts []string
	for _, s := range states {
		if s.Err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", s.ID, s.Err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s term %d leader %q applied %d", s.ID, s.State, s.Term, s.Leader, s.AppliedIndex))
	}
	return strings.Join(parts, "; ")
}

// agreedLeader returns the node a majority of all nodes names as leader,
// provided that node answers and says it leads.
func (c *Cluster) agreedLeader(states []NodeState) (int, bool) {
	votes := map[string]int{}
	for _, s := range states {
		if s.Err == nil && s.Leader != "" {
			votes[s.Leader]++
		}
	}
	for id, v := range votes {
		if v < len(c.nodes)/2+1 {
			continue
		}
		if i := c.NodeIndex(id); i >= 0 && states[i].Err == nil && states[i].State == "leader" {
			return i, true
		}
	}
	return -1, false
}

// Leader polls every Config.PollInterval until a majority of the nodes
// names the same leader and that node says it leads, and returns its
// index; it fails when ctx is done first, with the last views.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	for {
		states := c.States(ctx)
		if i, ok := c.agreedLeader(states); ok {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("find leader: %w (last views: %s)", ctx.Err(), describe(states))
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// WaitConverged polls until every node answers with the same applied
// index, and returns it. Entries keep being applied while clients write,
// so call it when they have stopped.
func (c *Cluster) WaitConverged(ctx context.Context) (uint64, error) {
	for {
		states := c.States(ctx)
		same := true
		for _, s := range states {
			same = same && s.Err == nil && s.AppliedIndex == states[0].AppliedIndex
		}
		if same {
			return states[0].AppliedIndex, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for converged nodes: %w (last views: %s)", ctx.Err(), describe(states))
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// TransferLeadership asks the leader to hand leadership over to a voter of
// Raft's choice (the leader flushes first, bounded by its FlushOnLeave),
// waits until the nodes agree on a new leader and returns its index.
func (c *Cluster) TransferLeadership(ctx context.Context) (int, error) {
	old, err := c.Leader(ctx)
	if err != nil {
		return -1, fmt.Errorf("transfer leadership: %w", err)
	}
	if _, err := c.nodes[old].cluster.TransferLeadership(ctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{})); err != nil {
		return -1, fmt.Errorf("transfer leadership from %s: %w", c.nodes[old].id, err)
	}
	for {
		i, err := c.Leader(ctx)
		if err != nil {
			return -1, fmt.Errorf("transfer leadership from %s: %w", c.nodes[old].id, err)
		}
		if i != old {
			c.log.Info("nemesis: transferred leadership", "from", c.nodes[old].id, "to", c.nodes[i].id)
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("transfer leadership from %s: still leading: %w", c.nodes[old].id, ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// adminCallTimeout bounds one membership call to the leader.
const adminCallTimeout = 15 * time.Second

// onLeader runs call against the current leader's real API until it
// succeeds, fails with an error that is not about leadership, or ctx is
// done. An answer lost with a leader change is retried: the membership
// calls are idempotent.
func (c *Cluster) onLeader(ctx context.Context, what string, call func(ctx context.Context, leader *node) error) error {
	for {
		i, err := c.Leader(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		cctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
		err = call(cctx, c.nodes[i])
		cancel()
		if err == nil {
			return nil
		}
		switch connect.CodeOf(err) {
		case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled, connect.CodeUnknown:
			if ctx.Err() != nil {
				return fmt.Errorf("%s on %s: %w", what, c.nodes[i].id, err)
			}
			c.log.Warn("membership call failed; retrying on the leader", "call", what, "leader", c.nodes[i].id, "err", err)
		default:
			return fmt.Errorf("%s on %s: %w", what, c.nodes[i].id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// RemoveAndReadd takes node i out of the cluster and brings it back as a
// new, empty member with the same ID and addresses: RemoveNode on the
// leader (which may be i itself), SIGKILL, wipe of its data directory
// (node.log is kept), a start without --bootstrap, AddNode on the leader
// with its real addresses, and a wait until the node reports itself as a
// voter and a follower. Later restarts of i go without --bootstrap too.
func (c *Cluster) RemoveAndReadd(ctx context.Context, i int) error {
	n, err := c.node(i)
	if err != nil {
		return fmt.Errorf("remove and re-add: %w", err)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	n.op.Lock()
	defer n.op.Unlock()
	if err := c.checkLive(); err != nil {
		return fmt.Errorf("remove and re-add %s: %w", n.id, err)
	}

	// A removed node may exit by itself (graft node exits once its Raft
	// shut down on removal): that exit is expected.
	if p := n.current(); p != nil {
		p.expected.Store(true)
	}
	err = c.onLeader(ctx, "remove "+n.id, func(ctx context.Context, l *node) error {
		_, err := l.cluster.RemoveNode(ctx, connect.NewRequest(&graftv1.RemoveNodeRequest{Id: n.id}))
		if connect.CodeOf(err) == connect.CodeNotFound {
			c.log.Info("node is not a member; nothing to remove", "node", n.id, "leader", l.id)
			return nil // an earlier attempt removed it, or an earlier run did
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("remove and re-add: %w", err)
	}
	c.log.Info("nemesis: removed node", "node", n.id)

	if n.current().alive() {
		if err := c.kill(n); err != nil && n.current().alive() {
			return fmt.Errorf("remove and re-add: %w", err)
		}
	}
	if err := wipe(n.dir); err != nil {
		return fmt.Errorf("remove and re-add %s: %w", n.id, err)
	}
	n.mu.Lock()
	n.bootstrap = false
	n.mu.Unlock()
	if err := c.startNode(ctx, n); err != nil {
		return fmt.Errorf("remove and re-add: restart %s: %w", n.id, err)
	}
	c.log.Info("nemesis: wiped and restarted node without bootstrap", "node", n.id, "pid", n.current().pid)

	err = c.onLeader(ctx, "add "+n.id, func(ctx context.Context, l *node) error {
		_, err := l.cluster.AddNode(ctx, connect.NewRequest(&graftv1.AddNodeRequest{Id: n.id, RaftAddr: n.raftAddr, ApiAddr: n.apiAddr}))
		return err
	})
	if err != nil {
		return fmt.Errorf("remove and re-add: %w", err)
	}
	if err := c.waitMember(ctx, n); err != nil {
		return fmt.Errorf("remove and re-add: %w", err)
	}
	c.log.Info("nemesis: re-added node", "node", n.id)
	return nil
}

// Members returns the suffrage ("voter", "nonvoter") of every node in the
// current leader's Raft configuration, by node index; a node missing from
// the map is not a member.
func (c *Cluster) Members(ctx context.Context) (map[int]string, error) {
	out := map[int]string{}
	err := c.onLeader(ctx, "read configuration", func(ctx context.Context, l *node) error {
		resp, err := l.cluster.Status(ctx, connect.NewRequest(&graftv1.StatusRequest{}))
		if err != nil {
			return err
		}
		clear(out)
		for _, s := range resp.Msg.GetNodes() {
			if i := c.NodeIndex(s.GetId()); i >= 0 {
				out[i] = s.GetSuffrage()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Rejoin makes every node a voting member again, finishing what a
// RemoveAndReadd cut short (its context ended, or a call failed) left
// undone: a node missing from the leader's configuration is killed if it
// runs (its data is stale once removed), wiped, started without
// --bootstrap and added; a nonvoter is added again (AddNode resumes its
// catch-up); then each waits until it is a voter and a follower. Nodes
// that are voters are left alone (Restart brings back a dead one). The
// final phase of a run calls it before reading, so a fault cut off by the
// time limit never leaves a member out of the final checks.
func (c *Cluster) Rejoin(ctx context.Context) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	members, err := c.Members(ctx)
	if err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	var errs []error
	for _, n := range c.nodes {
		suffrage, member := members[n.idx]
		if member && suffrage == "voter" {
			continue
		}
		if err := c.rejoin(ctx, n, member); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rejoin brings n back as a voter; member says whether it is in the
// configuration (as a nonvoter) already.
func (c *Cluster) rejoin(ctx context.Context, n *node, member bool) error {
	n.op.Lock()
	defer n.op.Unlock()
	if err := c.checkLive(); err != nil {
		return fmt.Errorf("rejoin %s: %w", n.id, err)
	}
	if !member {
		c.log.Info("nemesis: rejoining node that is not a member", "node", n.id)
		if p := n.current(); p.alive() {
			p.expected.Store(true)
			if err := c.kill(n); err != nil && n.current().alive() {
				return fmt.Errorf("rejoin: %w", err)
			}
		}
		if err := wipe(n.dir); err != nil {
			return fmt.Errorf("rejoin %s: %w", n.id, err)
		}
		n.mu.Lock()
		n.bootstrap = false
		n.mu.Unlock()
		if err := c.startNode(ctx, n); err != nil {
			return fmt.Errorf("rejoin: restart %s: %w", n.id, err)
		}
	} else if !n.current().alive() {
		if err := c.startNode(ctx, n); err != nil {
			return fmt.Errorf("rejoin: restart %s: %w", n.id, err)
		}
	}
	err := c.onLeader(ctx, "add "+n.id, func(ctx context.Context, l *node) error {
		_, err := l.cluster.AddNode(ctx, connect.NewRequest(&graftv1.AddNodeRequest{Id: n.id, RaftAddr: n.raftAddr, ApiAddr: n.apiAddr}))
		return err
	})
	if err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	if err := c.waitMember(ctx, n); err != nil {
		return fmt.Errorf("rejoin: %w", err)
	}
	c.log.Info("nemesis: rejoined node", "node", n.id)
	return nil
}

// waitMember polls node n's own Status until it lists itself as a voter
// and is a follower.
func (c *Cluster) waitMember(ctx context.Context, n *node) error {
	var last string
	for {
		// A full status asks the peers too, each bounded by a second.
		cctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout+2*time.Second)
		resp, err := n.cluster.Status(cctx, connect.NewRequest(&graftv1.StatusRequest{}))
		cancel()
		if err != nil {
			last = err.Error()
		} else {
			last = "not in its own configuration"
			for _, s := range resp.Msg.GetNodes() {
				if s.GetId() != n.id {
					continue
				}
				if s.GetSuffrage() == "voter" && s.GetState() == "follower" {
					return nil
				}
				last = fmt.Sprintf("suffrage %q, state %q", s.GetSuffrage(), s.GetState())
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to join as a voter: %w (last: %s)", n.id, ctx.Err(), last)
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// wipe empties a node's data directory, keeping its log.
func wipe(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wipe %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() == "node.log" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("wipe %s: %w", dir, err)
		}
	}
	return nil
}
