package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/jepsen"
	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/nemesis"
)

// runJepsen runs one consistency test against a fresh three-node cluster
// of this very binary. Exit status: 0 when every checker passed, 1 on an
// anomaly, 2 when the run could not decide (or could not run).
func runJepsen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("jepsen", "jepsen [--workload W] [--nemesis N1,N2] [--edge N] [--time-limit D] [--seed S] [--out DIR] [--raft-log-store bolt|wal]", stderr)
	var o jepsen.Options
	fs.StringVar(&o.Workload, "workload", "register", "workload: register (commit chains), bank, ryw (read-your-writes), sqlite-bank (SQL transfers in client processes on their own replicas)")
	nem := fs.String("nemesis", "none", "comma-separated nemeses: "+strings.Join(nemesis.Names, ", "))
	fs.DurationVar(&o.TimeLimit, "time-limit", 60*time.Second, "how long the workload runs under faults")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the run's choices (workload, fault schedule)")
	fs.StringVar(&o.Out, "out", "", "report directory (default jepsen-out/WORKLOAD-NEMESES-sSEED-TIME)")
	fs.IntVar(&o.Processes, "processes", 10, "concurrent client processes")
	fs.IntVar(&o.Volumes, "volumes", 3, "volumes (register)")
	fs.IntVar(&o.Edges, "edge", 0, "start N graft edge processes (upstream: the nodes' client proxies; object store: the bucket through its proxy) and send the workload's reads through them, worker w's to edge w mod N; commits still go to the nodes")
	fs.DurationVar(&o.Quiet, "quiet", 3*time.Second, "healthy time before each fault (jittered)")
	fs.DurationVar(&o.Hold, "hold", 5*time.Second, "how long each fault lasts (jittered)")
	fs.DurationVar(&o.OpTimeout, "op-timeout", 2*time.Second, "timeout of one client operation")
	fs.StringVar(&o.UpgradeBinary, "upgrade-binary", "", "with --nemesis rolling-restart: restart the nodes into this graft binary (a rolling upgrade from this one)")
	logStore := fs.String("raft-log-store", cluster.DefaultLogStore, "the nodes' Raft log store (graft node --raft-log-store): "+cluster.LogStoreBolt+" or "+cluster.LogStoreWAL)
	fs.BoolVar(&o.Secure, "secure", false, "run the cluster (and edges) with TLS (throwaway CA: HTTPS, mutual TLS between nodes) and tokens (every client sends an admin token)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	listPlanted := fs.Bool("list-planted", false, "print the planted-bug catalog (tag, class, workload, nemeses, checker, time limit, edges; tab-separated) and exit")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *listPlanted {
		for _, b := range jepsen.PlantedBugs {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", b.Tag, b.Class, b.Workload, strings.Join(b.Nemeses, ","), b.Checker, b.TimeLimit, b.Edges)
		}
		return nil
	}
	if *logStore != cluster.LogStoreBolt && *logStore != cluster.LogStoreWAL {
		return exitWith(2, fmt.Errorf("--raft-log-store %q: want %s or %s", *logStore, cluster.LogStoreBolt, cluster.LogStoreWAL))
	}
	o.NodeArgs = []string{"--raft-log-store", *logStore}
	var err error
	if o.Nemeses, err = nemesis.Parse(*nem); err != nil {
		return exitWith(2, err)
	}
	if o.Out == "" {
		o.Out = filepath.Join("jepsen-out", fmt.Sprintf("%s-%s-s%d-%s", o.Workload, strings.Join(o.Nemeses, "+"), o.Seed, time.Now().Format("20060102-150405")))
	}
	if o.Binary, err = os.Executable(); err != nil {
		return exitWith(2, err)
	}
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	o.Log = logger
	logger.Info("nodes", "raft_log_store", *logStore)
	out, err := jepsen.Run(ctx, o)
	if err != nil {
		return exitWith(2, err)
	}
	fmt.Fprintln(stdout, out.Summary)
	fmt.Fprintln(stdout, "report:", out.Dir)
	switch out.Verdict {
	case checker.Valid:
		return nil
	case checker.Invalid:
		return exitError(1)
	default:
		return exitError(2)
	}
}

// exitWith makes main print err and exit with code.
func exitWith(code int, err error) error { return codedError{code: code, err: err} }
