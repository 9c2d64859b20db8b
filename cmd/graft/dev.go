package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/graft-cluster/graft/cluster/devcluster"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := devcluster.DefaultConfig()
	fs := newFlags("dev", "dev [--dir DIR] [--port-base N] [-- NODE FLAGS...]", stderr)
	fs.StringVar(&cfg.Dir, "dir", "graft-dev", "state directory; node i keeps its data and node.log in DIR/n{i} (kept across runs)")
	fs.IntVar(&cfg.PortBase, "port-base", cfg.PortBase, "node i serves its API on port-base+i and Raft on port-base+100+i")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes")
	fs.StringVar(&cfg.Host, "host", cfg.Host, "loopback host to bind")
	logLevel := fs.String("log-level", "info", "log level of the supervisor: debug, info, warn, error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg.ExtraArgs = fs.Args() // everything after "--" goes to every node
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	cfg.Logger = logger.With("component", "dev")
	cfg.LogOutput = stderr
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return err
	}
	c, err := devcluster.New(cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.WaitReady(rctx); err != nil {
		if ctx.Err() == nil {
			logger.Error("cluster did not become ready", "err", err)
		}
	} else {
		eps := c.Endpoints()
		fmt.Fprintf(stdout, "graft dev: %d nodes ready, state in %s\n", len(eps), cfg.Dir)
		for i, e := range eps {
			fmt.Fprintf(stdout, "  %s  %s  (log: %s)\n", c.NodeIDs()[i], e, filepath.Join(cfg.Dir, c.NodeIDs()[i], "node.log"))
		}
		fmt.Fprintf(stdout, "try: curl -s -H 'Content-Type: application/json' -d '{}' %s/graft.v1.ClusterService/Status\n", eps[0])
		fmt.Fprintln(stdout, "Ctrl-C stops the cluster.")
	}
	return <-done
}
