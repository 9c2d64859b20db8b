package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/graft-cluster/graft/bench"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/flusher"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "bench", args, stdout, stderr, map[string]command{
		"commit":    {"closed-loop commit latency and throughput against a cluster", benchCommit},
		"fsync":     {"the disk floor: append + fdatasync latency", benchFsync},
		"compare":   {"graft vs etcd vs bare Raft vs the disk, same workloads, interleaved (scripts/bench.sh)", benchCompare},
		"edge":      {"reads through one graft edge vs the cluster directly, zipf page choice, interleaved (scripts/bench.sh)", benchEdge},
		"history":   {"one volume with a long flushed history: cold head and old reads, object-store requests and time, without and with checkpoints", benchHistory},
		"overwrite": {"the same pages rewritten for a wall-clock duration with --retain-history: bucket size over time against the live data", benchOverwrite},
		"raft-peer": {"one bare hashicorp/raft node with a no-op FSM (run by bench compare)", benchRaftPeer},
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench commit", "bench commit [--clients N] [--duration D] [--pages P] [--endpoint URL[,URL...]] [--json]", stderr)
	endpoints := fs.String("endpoint", defaultEndpoint("http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003"), "cluster endpoint(s), comma-separated; $"+EndpointEnv+" sets the default")
	clients := fs.Int("clients", 1, "concurrent committers, each on its own volume, closed loop")
	duration := fs.Duration("duration", 10*time.Second, "measured time")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up time")
	pages := fs.Int("pages", 1, "pages (4 KiB) per commit")
	fsyncDir := fs.String("fsync-dir", ".", "also measure append+fdatasync here, for scale ('' to skip)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	h2c := fs.Bool("h2c", false, "talk HTTP/2 without TLS (one multiplexed connection) instead of the default HTTP/1.1 (a connection per concurrent call)")
	caFile := fs.String("ca", "", "PEM CA bundle to verify https:// endpoints with (default: the system roots)")
	token := fs.String("token", "", "bearer token; default $"+TokenEnv)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	opts, err := clientSecurity(*caFile, or(*token, os.Getenv(TokenEnv)))
	if err != nil {
		return err
	}
	if *h2c {
		opts = append(opts, client.WithHTTPClient(client.H2CHTTPClient()))
	}
	cl, err := client.New(strings.Split(*endpoints, ","), opts...)
	if err != nil {
		return err
	}
	var floor *bench.Summary
	if *fsyncDir != "" {
		s, err := bench.MeasureFsync(ctx, *fsyncDir, 4096+64, 200)
		if err != nil {
			return fmt.Errorf("measure fsync: %w", err)
		}
		floor = &s
	}
	res, err := bench.RunCommit(ctx, bench.CommitConfig{Client: cl, Clients: *clients, Duration: *duration, Warmup: *warmup, Pages: *pages})
	if err != nil {
		return err
	}
	l := res.Latency
	out := map[string]any{
		"clients": res.Clients, "pages": res.Pages, "commits": l.Count, "seconds": res.Elapsed.Seconds(),
		"p50_ms": ms(l.P50), "p90_ms": ms(l.P90), "p99_ms": ms(l.P99), "max_ms": ms(l.Max), "mean_ms": ms(l.Mean),
		"ops_per_sec": res.OpsPerSec,
	}
	human := fmt.Sprintf("commit: %d clients, %d page(s)/commit, %d commits in %.1fs\n  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n  %.0f commits/s",
		res.Clients, res.Pages, l.Count, res.Elapsed.Seconds(), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), res.OpsPerSec)
	if floor != nil {
		out["fsync_p50_ms"], out["fsync_p99_ms"] = ms(floor.P50), ms(floor.P99)
		human += fmt.Sprintf("\n  disk floor (append+fdatasync, %s): p50 %.3f ms  p99 %.3f ms; commit p50 = %.1fx fsync p50",
			*fsyncDir, ms(floor.P50), ms(floor.P99), float64(l.P50)/float64(max(floor.P50, 1)))
	}
	return printResult(stdout, *asJSON, out, human)
}

func benchHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench history", "bench history [--commits N] [--rounds N] [--pages N] [--checkpoint-records N] [--latency D] [--json]", stderr)
	var cfg bench.HistoryConfig
	fs.IntVar(&cfg.Commits, "commits", 20000, "commits to one volume (the issue's scale: 100000)")
	fs.IntVar(&cfg.Rounds, "rounds", 2000, "flush rounds they are spread over, one log record each (the issue's scale: 10000)")
	fs.IntVar(&cfg.Pages, "pages", 1000, "distinct pages the commits overwrite")
	fs.IntVar(&cfg.CheckpointRecords, "checkpoint-records", 64, "checkpoint trigger of the run with checkpoints")
	fs.DurationVar(&cfg.Latency, "latency", 5*time.Millisecond, "added to every object-store request of the measured reads (negative: none)")
	fs.Uint64Var(&cfg.RetainLSNs, "retain-lsns", 0, "also run with checkpoints and --retain-lsns N, GC after every round, and compare bucket size with the live data (0: skip)")
	asJSON := fs.Bool("json", false, "print one JSON array")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	res, err := bench.RunHistory(ctx, cfg)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "history: %d commits over %d flush rounds, %d pages, %v per request while reading\n", res[0].Commits, res[0].Rounds, cfg.Pages, cfg.Latency)
	fmt.Fprintf(&b, "%-15s %6s %6s %9s %11s %-28s %-28s %-28s\n", "mode", "ckpts", "froms", "snapshot", "bucket/live", "cold head read", "cold old read", "restarted node head read")
	cost := func(c bench.ReadCost) string {
		r := c.Requests
		return fmt.Sprintf("%d req (%dL %dG %dR) %.1fms", r.Total(), r.List, r.Get, r.GetRange, ms(c.Took))
	}
	var out []map[string]any
	for _, r := range res {
		old := cost(r.Old)
		if r.Old.LSN == 0 {
			old = "below the horizon"
		}
		fmt.Fprintf(&b, "%-15s %6d %6d %8dB %10.2fx %-28s %-28s %-28s\n", r.Mode, r.Checkpoints, r.StateFroms, r.SnapshotBytes,
			float64(r.BucketBytes)/float64(max(r.LiveBytes, 1)), cost(r.Head), old, cost(r.Restart))
		out = append(out, map[string]any{
			"mode": r.Mode, "commits": r.Commits, "rounds": r.Rounds, "checkpoints": r.Checkpoints, "state_froms": r.StateFroms,
			"snapshot_bytes": r.SnapshotBytes, "build_s": r.Build.Seconds(),
			"head_requests": r.Head.Requests.Total(), "head_ms": ms(r.Head.Took),
			"old_lsn": r.Old.LSN, "old_requests": r.Old.Requests.Total(), "old_ms": ms(r.Old.Took),
			"restart_requests": r.Restart.Requests.Total(), "restart_ms": ms(r.Restart.Took),
			"bucket_bytes": r.BucketBytes, "live_bytes": r.LiveBytes, "gc_deleted": r.Deleted,
		})
	}
	return printResult(stdout, *asJSON, out, strings.TrimRight(b.String(), "\n"))
}

func benchOverwrite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench overwrite", "bench overwrite [--pages N] [--duration D] [--rate N] [--retain-history D] [--gc-grace D] [--json]", stderr)
	var cfg bench.OverwriteConfig
	fs.IntVar(&cfg.Pages, "pages", 1000, "pages rewritten (the live data)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long they are rewritten (wall clock)")
	fs.IntVar(&cfg.Rate, "rate", 20, "page writes per second")
	fs.IntVar(&cfg.PagesPerCommit, "pages-per-commit", 10, "pages of one commit")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", 250*time.Millisecond, "time between flush rounds")
	fs.IntVar(&cfg.CheckpointRecords, "checkpoint-records", 8, "checkpoint trigger")
	fs.DurationVar(&cfg.RetainHistory, "retain-history", time.Minute, "wall-clock retention (0: keep everything)")
	fs.DurationVar(&cfg.GCInterval, "gc-interval", time.Second, "time between GC steps (the node default is 1m)")
	fs.DurationVar(&cfg.GCGrace, "gc-grace", time.Second, "GC grace period (the node default, 10m, keeps that much more history in the bucket)")
	fs.Float64Var(&cfg.CompactBelow, "compact-below", flusher.DefaultConfig().CompactBelow, "compact segments whose needed fraction is below this at checkpoint time (0: no compaction)")
	fs.Uint64Var(&cfg.CompactSegmentBytes, "compact-segment-bytes", 0, "page bytes of one compacted segment at most (0: the node default, 128 KiB)")
	fs.Float64Var(&cfg.CompactMaxFraction, "compact-max-fraction", 0, "versions one checkpoint step moves at most, as a fraction of the volume's pages (0: the node default)")
	fs.DurationVar(&cfg.SampleInterval, "sample", 10*time.Second, "time between bucket measurements")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	res, err := bench.RunOverwrite(ctx, cfg)
	if err != nil {
		return err
	}
	var b strings.Builder
	c := res.Config
	ratio := func(n int64) float64 { return float64(n) / float64(max(res.LiveBytes, 1)) }
	fmt.Fprintf(&b, "overwrite: %d pages (%d B live), %d page writes/s in commits of %d, %v, flush every %v, checkpoint every %d records, retain-history %v, gc every %v grace %v, compact below %v\n",
		c.Pages, res.LiveBytes, c.Rate, c.PagesPerCommit, c.Duration, c.FlushInterval, c.CheckpointRecords, c.RetainHistory, c.GCInterval, c.GCGrace, c.CompactBelow)
	fmt.Fprintf(&b, "%8s %12s %8s %8s %11s %9s %9s %9s %9s\n", "t", "bucket B", "objects", "deleted", "bucket/live", "segments", "ckpts", "deltas", "log")
	var samples []map[string]any
	for _, s := range res.Samples {
		fmt.Fprintf(&b, "%7.0fs %12d %8d %8d %10.2fx %8.2fx %8.2fx %8.2fx %8.2fx\n", s.At.Seconds(), s.BucketBytes, s.Objects, s.Deleted, ratio(s.BucketBytes),
			ratio(s.SegmentBytes), ratio(s.CheckpointBytes), ratio(s.DeltaBytes), ratio(s.LogBytes))
		samples = append(samples, map[string]any{"t_s": s.At.Seconds(), "bucket_bytes": s.BucketBytes, "objects": s.Objects, "deleted": s.Deleted,
			"segment_bytes": s.SegmentBytes, "checkpoint_bytes": s.CheckpointBytes, "delta_bytes": s.DeltaBytes, "log_bytes": s.LogBytes})
	}
	fmt.Fprintf(&b, "commits %d, page bytes written %d (%.1fx live), objects deleted %d, compacted segments %d (%d pages moved), largest bucket once GC reached its steady state %d B (%.2fx live)",
		res.Commits, res.WrittenBytes, ratio(res.WrittenBytes), res.Deleted, res.CompactedSegments, res.CompactedPages, res.MaxAfterGC, ratio(res.MaxAfterGC))
	switch {
	case c.RetainHistory == 0:
		fmt.Fprintf(&b, "\ngoal (issue 13): without retention nothing is deleted: %s", passFail(res.Deleted == 0))
	case res.MaxAfterGC > 0:
		fmt.Fprintf(&b, "\ngoal (issue 13): bucket <= 3x the live data once GC ran: %.2fx, %s", ratio(res.MaxAfterGC), passFail(ratio(res.MaxAfterGC) <= 3))
	}
	out := map[string]any{
		"pages": c.Pages, "rate": c.Rate, "duration_s": c.Duration.Seconds(), "retain_history_s": c.RetainHistory.Seconds(),
		"live_bytes": res.LiveBytes, "written_bytes": res.WrittenBytes, "commits": res.Commits, "deleted": res.Deleted,
		"max_after_gc_bytes": res.MaxAfterGC, "samples": samples, "compact_below": c.CompactBelow,
		"compacted_segments": res.CompactedSegments, "compacted_pages": res.CompactedPages,
	}
	return printResult(stdout, *asJSON, out, b.String())
}

func benchFsync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench fsync", "bench fsync [--dir DIR] [--n N] [--size BYTES] [--json]", stderr)
	dir := fs.String("dir", ".", "directory on the disk to measure")
	n := fs.Int("n", 500, "appends to time")
	size := fs.Int("size", 4096+64, "bytes per append")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	s, err := bench.MeasureFsync(ctx, *dir, *size, *n)
	if err != nil {
		return err
	}
	out := map[string]any{"n": s.Count, "size": *size, "p50_ms": ms(s.P50), "p90_ms": ms(s.P90), "p99_ms": ms(s.P99), "max_ms": ms(s.Max)}
	return printResult(stdout, *asJSON, out, fmt.Sprintf("append+fdatasync of %d bytes, %d times in %s:\n  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms",
		*size, s.Count, *dir, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max)))
}

func benchCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := bench.DefaultCompareConfig()
	fs := newFlags("bench compare", "bench compare [--out DIR] [--work-dir DIR] [--etcd BIN --etcd-load BIN] [--duration D] [--targets T,...] [--workloads CxP,...]", stderr)
	fs.StringVar(&cfg.OutDir, "out", "", "results directory (default bench-out/compare-TIME)")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "data directories of every cluster, on the disk under test (default a new directory under the current one, removed at the end)")
	fs.StringVar(&cfg.GraftBin, "graft", "", "graft binary for graft dev and the bare-Raft peers (default this executable)")
	fs.StringVar(&cfg.EtcdBin, "etcd", "bin/tools/etcd", "etcd server binary (scripts/bench.sh builds it from bench/peers/etcd)")
	fs.StringVar(&cfg.EtcdLoadBin, "etcd-load", "bin/tools/etcd-load", "etcd load generator (bench/peers/etcd/load)")
	targets := fs.String("targets", strings.Join(cfg.Targets, ","), "targets, in the order each workload runs them, from: "+strings.Join(bench.KnownTargets, ", "))
	workloads := fs.String("workloads", joinWorkloads(cfg.Workloads), "workloads CLIENTSxPAGES (closed loop) or CLIENTSxPAGES@RATE (open loop at RATE commits/s in all, graft targets only), in run order")
	s3Workloads := fs.String("s3-workloads", joinWorkloads(cfg.S3Workloads), "workloads that also run graft-s3")
	spreadWorkloads := fs.String("spread-workloads", joinWorkloads(cfg.SpreadWorkloads), "workloads that also run graft-spread (clients spread over the three nodes)")
	fs.DurationVar(&cfg.S3Latency, "s3-latency", cfg.S3Latency, "added S3 latency of the graft-s3 target")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per cell")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured warm-up per cell")
	fs.IntVar(&cfg.PortBase, "port-base", cfg.PortBase, "loopback ports: graft dev +1..+301, etcd +401..+423, bare Raft +501..+513")
	fs.Int64Var(&cfg.EtcdQuotaBytes, "etcd-quota-bytes", cfg.EtcdQuotaBytes, "etcd --quota-backend-bytes")
	fs.StringVar(&cfg.Label, "label", "", "free text recorded with the results (a commit, a note)")
	nodeArgs := fs.String("graft-node-args", "", "more flags for every graft node of every graft target, space-separated (an A/B of a node setting)")
	logLevel := fs.String("log-level", "info", "progress log level: debug, info, warn, error")
	secure := fs.Bool("secure", false, "also run each workload against "+bench.TargetGraftSecure+" (graft dev --tls --auth: HTTPS, mutual TLS between nodes, a token on every call), right after graft, for the cost of security in one run")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg.Targets = strings.Split(*targets, ",")
	if *secure && !slices.Contains(cfg.Targets, bench.TargetGraftSecure) {
		if i := slices.Index(cfg.Targets, bench.TargetGraft); i >= 0 {
			cfg.Targets = slices.Insert(cfg.Targets, i+1, bench.TargetGraftSecure)
		} else {
			cfg.Targets = append(cfg.Targets, bench.TargetGraftSecure)
		}
	}
	var err error
	if cfg.Workloads, err = parseWorkloads(*workloads); err != nil {
		return err
	}
	cfg.GraftNodeArgs = strings.Fields(*nodeArgs)
	if cfg.SpreadWorkloads, err = parseWorkloads(*spreadWorkloads); err != nil {
		return err
	}
	if cfg.S3Workloads, err = parseWorkloads(*s3Workloads); err != nil {
		return err
	}
	if cfg.Logger, err = newLogger(stderr, *logLevel, "text"); err != nil {
		return err
	}
	cleanup, err := benchDirs("compare", &cfg.GraftBin, &cfg.OutDir, &cfg.WorkDir)
	if err != nil {
		return err
	}
	defer cleanup()
	rep, err := bench.RunCompare(ctx, cfg)
	if rep == nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\nresults in %s (results.md, results.json, latency.svg, one JSON per cell)\n", rep.Markdown(), cfg.OutDir)
	if err != nil {
		return err
	}
	failed := 0
	for _, c := range rep.Cells {
		if c.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cells failed (see results.md and the logs in %s)", failed, len(rep.Cells), cfg.OutDir)
	}
	return nil
}

func joinWorkloads(ws []bench.Workload) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.String()
	}
	return strings.Join(s, ",")
}

func parseWorkloads(s string) ([]bench.Workload, error) {
	var out []bench.Workload
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		w, err := bench.ParseWorkload(f)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// raftPeers is the repeatable --peer ID,ADDR flag of bench raft-peer.
type raftPeers []bench.RaftPeer

func (p *raftPeers) String() string {
	var s []string
	for _, x := range *p {
		s = append(s, x.ID+","+x.Addr)
	}
	return strings.Join(s, " ")
}

func (p *raftPeers) Set(v string) error {
	id, addr, ok := strings.Cut(v, ",")
	if !ok || id == "" || addr == "" {
		return errors.New("want ID,HOST:PORT")
	}
	*p = append(*p, bench.RaftPeer{ID: id, Addr: addr})
	return nil
}

func benchRaftPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg bench.RaftPeerConfig
	var peers raftPeers
	fs := newFlags("bench raft-peer", "bench raft-peer --id ID --dir DIR --raft-addr HOST:PORT --control-addr HOST:PORT --peer ID,HOST:PORT...", stderr)
	fs.StringVar(&cfg.ID, "id", "", "Raft server ID (one of the --peer IDs)")
	fs.StringVar(&cfg.Dir, "dir", "", "data directory (Raft log with fsync, snapshots)")
	fs.StringVar(&cfg.LogStore, "log-store", cluster.DefaultLogStore, "Raft log store, as graft node --raft-log-store: bolt or wal")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "", "host:port of the Raft transport")
	fs.StringVar(&cfg.ControlAddr, "control-addr", "", "host:port of the control server: GET /status, POST /run?clients=N&pages=P&warmup=D&duration=D")
	fs.Var(&peers, "peer", "a voter as ID,HOST:PORT (repeat; include this node)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	cfg.Peers, cfg.Logger, cfg.LogOutput = peers, logger, stderr
	return bench.RunRaftPeer(ctx, cfg)
}

func benchEdge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := bench.DefaultEdgeConfig()
	fs := newFlags("bench edge", "bench edge [--out DIR] [--work-dir DIR] [--clients N] [--read-pages N] [--duration D] [--rounds R] [--cache-bytes B] [--prefill-reads N --prefill-max-reads M] [--json]", stderr)
	fs.StringVar(&cfg.OutDir, "out", "", "directory of the process logs and results.json, results.txt (default bench-out/edge-TIME)")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "the cluster's data (default a new directory under the current one, removed at the end)")
	fs.StringVar(&cfg.GraftBin, "graft", "", "graft binary for graft dev and graft edge (default this executable)")
	fs.IntVar(&cfg.PortBase, "port-base", cfg.PortBase, "loopback ports: the edge on +0, graft dev's nodes +1..+3, Raft +101..+103, S3 +301")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent closed-loop readers")
	fs.IntVar(&cfg.Volumes, "volumes", cfg.Volumes, "volumes of the data set")
	fs.IntVar(&cfg.PagesPerVolume, "pages-per-volume", cfg.PagesPerVolume, "pages (4 KiB) per volume, committed and flushed before measuring")
	fs.IntVar(&cfg.BatchPages, "batch-pages", cfg.BatchPages, "pages per commit while loading")
	fs.IntVar(&cfg.LoadParallel, "load-parallel", cfg.LoadParallel, "volumes loaded at a time")
	fs.IntVar(&cfg.ReadPages, "read-pages", cfg.ReadPages, "consecutive pages per ReadPages call")
	fs.Float64Var(&cfg.Theta, "theta", cfg.Theta, "zipf skew of the page choice, 0 < theta < 1 (YCSB: 0.99)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the readers' page choice")
	fs.IntVar(&cfg.PrefillReads, "prefill-reads", cfg.PrefillReads, "least unmeasured reads through the edge before round 1 (0: start cold)")
	fs.IntVar(&cfg.PrefillMaxReads, "prefill-max-reads", cfg.PrefillMaxReads, "go on prefilling in chunks until the cache is full and its offload steady, up to this many reads (<= --prefill-reads: exactly --prefill-reads)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds of (edge phase, direct phase)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per phase")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured warm-up per phase")
	cacheBytes := byteSize(cfg.CacheBytes)
	fs.Var(&cacheBytes, "cache-bytes", "the edge's --cache-bytes (suffixes KiB, MiB, GiB)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	logLevel := fs.String("log-level", "info", "progress log level: debug, info, warn, error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg.CacheBytes = int64(cacheBytes)
	var err error
	if cfg.Logger, err = newLogger(stderr, *logLevel, "text"); err != nil {
		return err
	}
	cleanup, err := benchDirs("edge", &cfg.GraftBin, &cfg.OutDir, &cfg.WorkDir)
	if err != nil {
		return err
	}
	defer cleanup()
	rep, err := bench.RunEdge(ctx, cfg)
	if err != nil {
		return err
	}
	if err := bench.WriteEdgeReport(cfg.OutDir, rep); err != nil {
		return err
	}
	return printResult(stdout, *asJSON, rep, rep.Text()+"\nresults in "+cfg.OutDir)
}

// benchDirs fills in a benchmark's defaults: this executable as the graft
// binary, bench-out/NAME-TIME for results, a temporary work dir (removed
// by the returned cleanup) for state.
func benchDirs(name string, bin, out, work *string) (cleanup func(), err error) {
	cleanup = func() {}
	if *bin == "" {
		if *bin, err = os.Executable(); err != nil {
			return cleanup, fmt.Errorf("find own executable: %w", err)
		}
	}
	if *out == "" {
		*out = filepath.Join("bench-out", name+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	if *work == "" {
		if *work, err = os.MkdirTemp(".", ".bench-"+name+"-"); err != nil {
			return cleanup, fmt.Errorf("create work dir: %w", err)
		}
		dir := *work
		cleanup = func() { os.RemoveAll(dir) }
	}
	return cleanup, nil
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
