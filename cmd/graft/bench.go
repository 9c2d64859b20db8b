package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/graft-cluster/graft/bench"
	"github.com/graft-cluster/graft/client"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "bench", args, stdout, stderr, map[string]command{
		"commit": {"closed-loop commit latency and throughput against a cluster", benchCommit},
		"fsync":  {"the disk floor: append + fdatasync latency", benchFsync},
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench commit", "bench commit [--clients N] [--duration D] [--pages P] [--endpoint URL[,URL...]] [--json]", stderr)
	endpoints := fs.String("endpoint", "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003", "cluster endpoint(s), comma-separated")
	clients := fs.Int("clients", 1, "concurrent committers, each on its own volume, closed loop")
	duration := fs.Duration("duration", 10*time.Second, "measured time")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up time")
	pages := fs.Int("pages", 1, "pages (4 KiB) per commit")
	fsyncDir := fs.String("fsync-dir", ".", "also measure append+fdatasync here, for scale ('' to skip)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cl, err := client.New(strings.Split(*endpoints, ","))
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
