package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
)

// rollingRestartHelp is printed under `graft cluster --help`: the
// procedure TestProcesses_RollingUpgrade runs and the rolling-restart
// nemesis of the consistency suite (graft jepsen) runs under load.
const rollingRestartHelp = `
Rolling restart or upgrade (one node at a time; the cluster keeps a quorum and
keeps serving):

  for each node ID (the followers first and the leader last moves leadership once):
    graft cluster step-down ID            # if ID leads, hand leadership to another voter
    stop the node with SIGTERM            # e.g. systemctl stop graft-node; it drains and exits 0
    install the new binary, start it with the same flags and data directory
    graft cluster wait-ready --endpoint http://ID_API_ADDR
                                          # /readyz answers 200 and the node holds everything
                                          # committed before: only then go on to the next node

A node that stops with SIGTERM while it leads flushes and transfers leadership
itself; step-down first keeps that off the stop's clock. Never stop a second
node before wait-ready returned for the first: with three nodes, two down is no
quorum. See deploy/README.md for the systemd version.
`

// clusterStepDown transfers leadership off node ID if it leads.
func clusterStepDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster step-down", "cluster step-down ID", false, stdout, stderr)
	if err := cc.parseN(args, 1, "ID"); err != nil {
		return err
	}
	id := cc.arg(0)
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if l := st.GetLeaderId(); l != id {
			if !hasMember(st, id) {
				return fmt.Errorf("cluster step-down: %s is not a member (members: %s)", id, memberIDs(st))
			}
			return cc.print(map[string]string{"leader_id": l, "stepped_down": ""}, id+" does not lead (leader: "+or(l, "none")+"); nothing to do")
		}
		resp, err := c.Cluster(0).TransferLeadership(ctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{}))
		if err != nil {
			return fmt.Errorf("cluster step-down %s: %w", id, err)
		}
		if resp.Msg.GetLeaderId() == id {
			return fmt.Errorf("cluster step-down %s: it still leads after the transfer", id)
		}
		return cc.print(map[string]string{"leader_id": resp.Msg.GetLeaderId(), "stepped_down": id}, id+" stepped down; leader is now "+resp.Msg.GetLeaderId())
	})
}

func hasMember(st *graftv1.StatusResponse, id string) bool {
	for _, n := range st.GetNodes() {
		if n.GetId() == id {
			return true
		}
	}
	return false
}

func memberIDs(st *graftv1.StatusResponse) string {
	var ids []string
	for _, n := range st.GetNodes() {
		ids = append(ids, n.GetId())
	}
	return strings.Join(ids, ", ")
}

// clusterWaitReady waits until the node at --endpoint answers /readyz with
// 200 and then until its last log and commit indexes reach the leader's
// commit index read at that moment: it holds everything committed before
// and knows it is committed.
func clusterWaitReady(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster wait-ready", "cluster wait-ready --endpoint URL [--timeout 2m]", false, stdout, stderr)
	poll := cc.fs.Duration("poll", 200*time.Millisecond, "how often to ask")
	if err := cc.parseN(args, 0, ""); err != nil {
		return err
	}
	if strings.Contains(cc.endpoints, ",") {
		return errors.New("cluster wait-ready: --endpoint names the one node to wait for")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cc.timeout)
	defer cancel()
	c, err := cc.client(client.WithAttempts(1))
	if err != nil {
		return err
	}
	hc, err := cc.httpClient()
	if err != nil {
		return err
	}
	wait := func(what string, last *error) error {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster wait-ready %s: %s: %w (last: %w)", cc.endpoints, what, ctx.Err(), *last)
		case <-time.After(*poll):
			return nil
		}
	}
	var last error
	for {
		if last = readyz(ctx, hc, cc.endpoints); last == nil {
			break
		}
		if err := wait("not ready", &last); err != nil {
			return err
		}
	}
	var target uint64
	var id string
	for {
		target, id, last = caughtUp(ctx, c, target)
		if last == nil {
			break
		}
		if err := wait("not caught up", &last); err != nil {
			return err
		}
	}
	took := time.Since(start).Round(time.Millisecond)
	return cc.print(map[string]any{"id": id, "ready": true, "caught_up_to": target, "took_ms": took.Milliseconds()},
		fmt.Sprintf("%s is ready and caught up (index %d) after %s", id, target, took))
}

// readyz asks base/readyz once (it needs no token).
func readyz(ctx context.Context, hc *http.Client, base string) error {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// caughtUp reads the target (the leader's commit index, when target is 0)
// through the node, then the node's own indexes; nil once they reach it.
func caughtUp(ctx context.Context, c *client.Client, target uint64) (uint64, string, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if target == 0 {
		st, err := c.Cluster(0).Status(rctx, connect.NewRequest(&graftv1.StatusRequest{}))
		if err != nil {
			return 0, "", err
		}
		for _, n := range st.Msg.GetNodes() {
			if n.GetId() == st.Msg.GetLeaderId() && n.GetError() == "" {
				target = n.GetCommitIndex()
			}
		}
		if target == 0 {
			return 0, "", fmt.Errorf("no answering leader in the status (leader %q)", st.Msg.GetLeaderId())
		}
	}
	st, err := c.Cluster(0).Status(rctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
	if err != nil {
		return target, "", err
	}
	if len(st.Msg.GetNodes()) != 1 {
		return target, "", fmt.Errorf("local status lists %d nodes", len(st.Msg.GetNodes()))
	}
	n := st.Msg.GetNodes()[0]
	if n.GetLastLogIndex() < target || n.GetCommitIndex() < target {
		return target, n.GetId(), fmt.Errorf("%s at last log %d, commit %d; leader's commit index %d", n.GetId(), n.GetLastLogIndex(), n.GetCommitIndex(), target)
	}
	return target, n.GetId(), nil
}
