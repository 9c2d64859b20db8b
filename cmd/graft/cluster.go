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
)

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "cluster", args, stdout, stderr, map[string]command{
		"status":   {"show every member's Raft state", clusterStatus},
		"add":      {"add a voter: cluster add ID RAFT_ADDR API_ADDR", clusterAdd},
		"remove":   {"remove a member: cluster remove ID", clusterRemove},
		"transfer": {"transfer leadership: cluster transfer [ID]", clusterTransfer},
		"flush":    {"flush everything acknowledged to the object store, and wait until it is durable", clusterFlush},
	})
}

func clusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster status", "cluster status [--endpoint URL] [--json]", stderr)
	var cf clientFlags
	cf.register(fs, false)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if cf.json {
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
		}
		out := struct {
			LeaderID string     `json:"leader_id"`
			Nodes    []nodeJSON `json:"nodes"`
		}{LeaderID: st.GetLeaderId(), Nodes: []nodeJSON{}}
		for _, n := range st.GetNodes() {
			out.Nodes = append(out.Nodes, nodeJSON{n.GetId(), n.GetApiAddr(), n.GetRaftAddr(), n.GetState(), n.GetSuffrage(), n.GetTerm(), n.GetAppliedIndex(), n.GetCommitIndex(), n.GetLastLogIndex(), n.GetError()})
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
	return tw.Flush()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

func clusterAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster add", "cluster add ID RAFT_ADDR API_ADDR", stderr)
	var cf clientFlags
	cf.register(fs, false)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 3 {
		return fmt.Errorf("cluster add: want ID RAFT_ADDR API_ADDR, got %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	id := fs.Arg(0)
	if _, err := c.Cluster(0).AddNode(ctx, connect.NewRequest(&graftv1.AddNodeRequest{Id: id, RaftAddr: fs.Arg(1), ApiAddr: fs.Arg(2)})); err != nil {
		return err
	}
	return printResult(stdout, cf.json, map[string]string{"added": id}, "added "+id)
}

func clusterRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster remove", "cluster remove ID", stderr)
	var cf clientFlags
	cf.register(fs, false)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("cluster remove: want ID, got %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	if _, err := c.Cluster(0).RemoveNode(ctx, connect.NewRequest(&graftv1.RemoveNodeRequest{Id: fs.Arg(0)})); err != nil {
		return err
	}
	return printResult(stdout, cf.json, map[string]string{"removed": fs.Arg(0)}, "removed "+fs.Arg(0))
}

func clusterTransfer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster transfer", "cluster transfer [ID]", stderr)
	var cf clientFlags
	cf.register(fs, false)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("cluster transfer: want at most one ID, got %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	resp, err := c.Cluster(0).TransferLeadership(ctx, connect.NewRequest(&graftv1.TransferLeadershipRequest{Id: fs.Arg(0)}))
	if err != nil {
		return err
	}
	return printResult(stdout, cf.json, map[string]string{"leader_id": resp.Msg.GetLeaderId()}, "leader is now "+resp.Msg.GetLeaderId())
}

func clusterFlush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cluster flush", "cluster flush", stderr)
	var cf clientFlags
	cf.register(fs, false)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cluster flush: unexpected arguments %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := c.Flush(ctx); err != nil {
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	return printResult(stdout, cf.json, map[string]any{"flushed": true, "took_ms": took.Milliseconds()},
		"flushed: everything acknowledged before the call is durable in the object store ("+took.String()+")")
}
