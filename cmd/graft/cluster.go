package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
)

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "cluster", args, stdout, stderr, map[string]command{
		"status":       {"show every member's Raft state", clusterStatus},
		"add":          {"add a voter: cluster add ID RAFT_ADDR API_ADDR", clusterAdd},
		"remove":       {"remove a member: cluster remove ID", clusterRemove},
		"transfer":     {"transfer leadership: cluster transfer [ID]", clusterTransfer},
		"flush":        {"flush everything acknowledged to the object store, and wait until it is durable", clusterFlush},
		"unquarantine": {"lift a volume's quarantine after fixing or removing the object it names: cluster unquarantine VID", clusterUnquarantine},
		"step-down":    {"move leadership off a node if it leads (before stopping it): cluster step-down ID", clusterStepDown},
		"wait-ready":   {"wait until a (re)started node is ready and caught up: cluster wait-ready --endpoint URL", clusterWaitReady},
	})
}

func clusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster status", "cluster status [--endpoint URL] [--json]", false, stdout, stderr)
	if err := cc.parseN(args, 0, ""); err != nil {
		return err
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return printStatus(stdout, cc.json, st)
	})
}

// printStatus prints the cluster's status as a table, or JSON.
func printStatus(stdout io.Writer, asJSON bool, st *graftv1.StatusResponse) error {
	if asJSON {
		type nodeJSON struct {
			ID           string `json:"id"`
			APIAddr      string `json:"api_addr"`
			RaftAddr     string `json:"raft_addr"`
			State        string `json:"state"`
			Suffrage     string `json:"suffrage"`
			Term         uint64 `json:"term"`
			AppliedIndex uint64 `json:"applied_index"`
			CommitIndex  uint64 `json:"commit_index"`
			LastLogIndex uint64 `json:"last_log_index"`
			Error        string `json:"error,omitempty"`
			StoreError   string `json:"object_store_error,omitempty"`
		}
		type quarantineJSON struct {
			VID    string `json:"vid"`
			Key    string `json:"key"`
			Reason string `json:"reason"`
			Index  uint64 `json:"index"`
		}
		out := struct {
			LeaderID    string           `json:"leader_id"`
			ClusterID   string           `json:"cluster_id,omitempty"`
			Nodes       []nodeJSON       `json:"nodes"`
			Quarantined []quarantineJSON `json:"quarantined"`
		}{LeaderID: st.GetLeaderId(), ClusterID: st.GetClusterId(), Nodes: []nodeJSON{}, Quarantined: []quarantineJSON{}}
		for _, n := range st.GetNodes() {
			out.Nodes = append(out.Nodes, nodeJSON{n.GetId(), n.GetApiAddr(), n.GetRaftAddr(), n.GetState(), n.GetSuffrage(), n.GetTerm(), n.GetAppliedIndex(), n.GetCommitIndex(), n.GetLastLogIndex(), n.GetError(), n.GetObjectStoreError()})
		}
		for _, q := range st.GetQuarantined() {
			out.Quarantined = append(out.Quarantined, quarantineJSON{q.GetVid(), q.GetKey(), q.GetReason(), q.GetIndex()})
		}
		return printResult(stdout, true, out, "")
	}
	fmt.Fprintf(stdout, "leader: %s\n", or(st.GetLeaderId(), "(none)"))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSUFFRAGE\tTERM\tAPPLIED\tCOMMIT\tLAST\tAPI\tRAFT")
	for _, n := range st.GetNodes() {
		state := n.GetState()
		if n.GetError() != "" {
			state += " (" + firstLine(n.GetError()) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", n.GetId(), state, n.GetSuffrage(), n.GetTerm(), n.GetAppliedIndex(), n.GetCommitIndex(), n.GetLastLogIndex(), n.GetApiAddr(), n.GetRaftAddr())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range st.GetNodes() {
		if e := n.GetObjectStoreError(); e != "" {
			fmt.Fprintf(stdout, "OBJECT STORE: %s cannot use the object store: %s\n", n.GetId(), e)
		}
	}
	if q := st.GetQuarantined(); len(q) > 0 {
		fmt.Fprintf(stdout, "QUARANTINED: %d volume(s) not flushed, commits refused; fix or remove the object, then `graft cluster unquarantine VID`\n", len(q))
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VID\tOBJECT\tREASON")
		for _, v := range q {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", v.GetVid(), v.GetKey(), v.GetReason())
		}
		return tw.Flush()
	}
	return nil
}

func clusterUnquarantine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster unquarantine", "cluster unquarantine VID", false, stdout, stderr)
	if err := cc.parseN(args, 1, "VID"); err != nil {
		return err
	}
	vid := cc.arg(0)
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		if _, err := c.Cluster(0).Unquarantine(ctx, connect.NewRequest(&graftv1.UnquarantineRequest{Vid: vid})); err != nil {
			return err
		}
		return cc.print(map[string]string{"unquarantined": vid}, "lifted the quarantine of "+vid+"; it flushes again from its flushed watermark")
	})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

func clusterAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster add", "cluster add ID RAFT_ADDR API_ADDR", false, stdout, stderr)
	if err := cc.parseN(args, 3, "ID RAFT_ADDR API_ADDR"); err != nil {
		return err
	}
	id := cc.arg(0)
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		if _, err := c.Cluster(0).AddNode(ctx, connect.NewRequest(&graftv1.AddNodeRequest{Id: id, RaftAddr: cc.arg(1), ApiAddr: cc.arg(2)})); err != nil {
			return err
		}
		return cc.print(map[string]string{"added": id}, "added "+id)
	})
}

func clusterRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster remove", "cluster remove ID", false, stdout, stderr)
	if err := cc.parseN(args, 1, "ID"); err != nil {
		return err
	}
	id := cc.arg(0)
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		if _, err := c.Cluster(0).RemoveNode(ctx, connect.NewRequest(&graftv1.RemoveNodeRequest{Id: id})); err != nil {
			return err
		}
		return cc.print(map[string]string{"removed": id}, "removed "+id)
	})
}

func clusterTransfer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster transfer", "cluster transfer [ID]", false, stdout, stderr)
	if err := cc.parse(args); err != nil {
		return err
	}
	if len(cc.args) > 1 {
		return fmt.Errorf("cluster transfer: want at most one ID, got %q", cc.args)
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		resp, err := c.Cluster(0).TransferLeadership(ctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{Id: cc.arg(0)}))
		if err != nil {
			return err
		}
		return cc.print(map[string]string{"leader_id": resp.Msg.GetLeaderId()}, "leader is now "+resp.Msg.GetLeaderId())
	})
}

func clusterFlush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("cluster flush", "cluster flush", false, stdout, stderr)
	if err := cc.parseN(args, 0, ""); err != nil {
		return err
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		start := time.Now()
		if err := c.Flush(ctx); err != nil {
			return err
		}
		took := time.Since(start).Round(time.Millisecond)
		return cc.print(map[string]any{"flushed": true, "took_ms": took.Milliseconds()},
			"flushed: everything acknowledged before the call is durable in the object store ("+took.String()+")")
	})
}
