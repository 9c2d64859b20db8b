package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
)

// GracefulRestart restarts node i the way an operator rolls an upgrade
// through a cluster, one node at a time:
//
//  1. if node i leads, leadership is transferred off it (TransferLeadership
//     on node i) and the nodes agree on another leader;
//  2. SIGTERM: the node drains its requests and exits by itself (a node
//     still running after Config.StopTimeout is SIGKILLed and that is
//     reported as an error, after the restart);
//  3. the binary is started again with the same arguments and data
//     (Config.UpgradeBinary instead, when set: from then on the node runs
//     it);
//  4. wait until its /readyz answers 200, then until its last log index
//     and commit index reach the leader's commit index read at that
//     moment (caught up: it holds everything committed before, and knows it
//     is committed; the FSM's applied index can stay below, since Raft's
//     no-op, barrier and configuration entries are not applied to it).
//
// ctx bounds the whole restart (and Stop cancels it).
func (c *Cluster) GracefulRestart(ctx context.Context, i int) error {
	n, err := c.node(i)
	if err != nil {
		return fmt.Errorf("graceful restart: %w", err)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	if err := c.transferOff(ctx, n); err != nil {
		return fmt.Errorf("graceful restart %s: %w", n.id, err)
	}

	n.op.Lock()
	defer n.op.Unlock()
	if err := c.checkLive(); err != nil {
		return fmt.Errorf("graceful restart %s: %w", n.id, err)
	}
	var stopErr error
	if p := n.current(); p.alive() {
		killed, err := p.stop(ctx, c.cfg.StopTimeout)
		switch {
		case err != nil:
			return fmt.Errorf("graceful restart %s: stop: %w", n.id, err)
		case killed:
			stopErr = fmt.Errorf("graceful restart %s: pid %d did not exit within %s of SIGTERM; killed (see %s)", n.id, p.pid, c.cfg.StopTimeout, p.logPath)
		}
		c.log.Info("nemesis: stopped node with SIGTERM", "node", n.id, "pid", p.pid, "status", p.status)
	}
	if c.cfg.UpgradeBinary != "" {
		n.mu.Lock()
		n.binary = c.cfg.UpgradeBinary
		n.mu.Unlock()
	}
	if err := c.startNode(ctx, n); err != nil {
		return errors.Join(stopErr, fmt.Errorf("graceful restart %s: %w", n.id, err))
	}
	if err := c.waitCaughtUp(ctx, n); err != nil {
		return errors.Join(stopErr, fmt.Errorf("graceful restart %s: %w", n.id, err))
	}
	c.log.Info("nemesis: node restarted gracefully and caught up", "node", n.id, "pid", n.current().pid)
	return stopErr
}

// transferOff moves leadership off n if n leads, and waits until the nodes
// agree on another leader.
func (c *Cluster) transferOff(ctx context.Context, n *node) error {
	for {
		l, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		if l != n.idx {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
		_, err = n.cluster.TransferLeadership(cctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{}))
		cancel()
		if err != nil {
			c.log.Warn("transfer leadership off node before its restart", "node", n.id, "err", err)
		} else {
			c.log.Info("nemesis: transferred leadership off node before its restart", "node", n.id)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("transfer leadership off: %w", ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// waitCaughtUp waits until n answers /readyz with 200, then until its
// last log and commit indexes reach the leader's commit index read then.
func (c *Cluster) waitCaughtUp(ctx context.Context, n *node) error {
	var last error
	for {
		if last = c.checkReady(ctx, n); last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for ready: %w (last: %w)", ctx.Err(), last)
		case <-time.After(c.cfg.PollInterval):
		}
	}
	var target uint64
	for {
		states := c.States(ctx)
		if target == 0 {
			if l, ok := c.agreedLeader(states); ok {
				target = states[l].CommitIndex
			}
		}
		s := states[n.idx]
		if target > 0 && s.Err == nil && s.LastLog >= target && s.CommitIndex >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for catch-up to the leader's commit index %d: %w (last views: %s)", target, ctx.Err(), describe(states))
		case <-time.After(c.cfg.PollInterval):
		}
	}
}
