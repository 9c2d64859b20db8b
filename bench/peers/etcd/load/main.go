// Command etcd-load is the etcd side of `graft bench compare`: closed-loop
// Puts against a running etcd cluster, printing the same JSON as
// `graft bench commit --json` (p50_ms, p90_ms, p99_ms, ops_per_sec, ...)
// plus the latency CDF the comparison plots.
//
// Each of --clients workers owns one key and Puts a value of --pages x 4096
// bytes to it, waiting for each response before the next Put (closed loop),
// through one shared clientv3.Client over every endpoint, as graft's bench
// shares one client.Client. Only Puts started after --warmup are recorded;
// none start after --warmup + --duration. A Put error ends the run with
// exit status 1: the measurement would not mean much otherwise.
//
// Percentiles use the nearest-rank definition of graft's bench.Percentile
// (this module does not import graft, so etcd is built with etcd's own
// dependency versions).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// pageSize is graft's page size; a Put carries pages x pageSize bytes.
const pageSize = 4096

// cdfPercents are the percentiles reported in cdf_ms, the same list as
// graft's bench.CDFPercents.
var cdfPercents = func() []float64 {
	ps := []float64{0}
	for p := 1; p <= 99; p++ {
		ps = append(ps, float64(p))
	}
	return append(ps, 99.5, 99.9, 99.99, 100)
}()

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "etcd-load:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("etcd-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "etcd client URLs, comma-separated")
	clients := fs.Int("clients", 1, "concurrent writers, each on its own key, closed loop")
	pages := fs.Int("pages", 1, "value size in 4 KiB pages")
	duration := fs.Duration("duration", 10*time.Second, "measured time")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up time")
	readyTimeout := fs.Duration("ready-timeout", 30*time.Second, "how long to wait for the cluster to accept a Put")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clients < 1 || *pages < 1 || *duration <= 0 || *warmup < 0 {
		return fmt.Errorf("need --clients >= 1, --pages >= 1, --duration > 0, --warmup >= 0")
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*endpoints, ","),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("create etcd client: %w", err)
	}
	defer cli.Close()
	if err := waitReady(ctx, cli, *readyTimeout); err != nil {
		return err
	}
	res, err := closedLoop(ctx, *clients, *warmup, *duration, func(ctx context.Context, w int, n uint64, val []byte) error {
		binary.BigEndian.PutUint64(val, uint64(w)<<40|n)
		_, err := cli.Put(ctx, fmt.Sprintf("bench/%04d", w), string(val))
		return err
	}, *pages*pageSize)
	if err != nil {
		return err
	}
	res.Pages = *pages
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// waitReady Puts a small key until it succeeds or timeout passes.
func waitReady(ctx context.Context, cli *clientv3.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Put(pctx, "bench/ready", "1")
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("etcd not ready after %s: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// result is the JSON printed: the keys of `graft bench commit --json`
// plus min_ms, p999_ms, errors and cdf_ms ([percent, ms] pairs).
type result struct {
	Clients   int          `json:"clients"`
	Pages     int          `json:"pages"`
	Commits   int          `json:"commits"`
	Errors    int          `json:"errors"`
	Seconds   float64      `json:"seconds"`
	MinMS     float64      `json:"min_ms"`
	MeanMS    float64      `json:"mean_ms"`
	P50MS     float64      `json:"p50_ms"`
	P90MS     float64      `json:"p90_ms"`
	P99MS     float64      `json:"p99_ms"`
	P999MS    float64      `json:"p999_ms"`
	MaxMS     float64      `json:"max_ms"`
	OpsPerSec float64      `json:"ops_per_sec"`
	CDF       [][2]float64 `json:"cdf_ms"`
}

// closedLoop runs op from clients workers, each with its own value buffer
// of valueBytes, and summarises the latencies of the ops started in the
// measured window.
func closedLoop(ctx context.Context, clients int, warmup, duration time.Duration,
	op func(ctx context.Context, worker int, n uint64, val []byte) error, valueBytes int) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	var (
		mu      sync.Mutex
		samples []time.Duration
		firstEr error
		wg      sync.WaitGroup
	)
	for w := range clients {
		wg.Go(func() {
			val := make([]byte, valueBytes)
			mine := make([]time.Duration, 0, 1024)
			defer func() {
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			}()
			for n := uint64(0); ; n++ {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					return
				}
				if err := op(ctx, w, n, val); err != nil {
					mu.Lock()
					if firstEr == nil && ctx.Err() == nil {
						firstEr = fmt.Errorf("client %d put %d: %w", w, n, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				if t0.After(measureFrom) {
					mine = append(mine, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	if firstEr != nil {
		return result{}, firstEr
	}
	elapsed := max(time.Since(measureFrom), 0)
	slices.Sort(samples)
	r := result{Clients: clients, Commits: len(samples), Seconds: elapsed.Seconds()}
	if len(samples) == 0 {
		return r, nil
	}
	var total time.Duration
	for _, d := range samples {
		total += d
	}
	r.MinMS, r.MaxMS = millis(samples[0]), millis(samples[len(samples)-1])
	r.MeanMS = millis(total / time.Duration(len(samples)))
	r.P50MS = millis(percentile(samples, 50))
	r.P90MS = millis(percentile(samples, 90))
	r.P99MS = millis(percentile(samples, 99))
	r.P999MS = millis(percentile(samples, 99.9))
	if elapsed > 0 {
		r.OpsPerSec = float64(len(samples)) / elapsed.Seconds()
	}
	for _, p := range cdfPercents {
		r.CDF = append(r.CDF, [2]float64{p, millis(percentile(samples, p))})
	}
	return r, nil
}

// percentile is graft's bench.Percentile: the nearest-rank p-th percentile
// of sorted (ascending), p resolved to 1e-4 percent.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := int64(len(sorted))
	if n == 0 {
		return 0
	}
	const scale = 1_000_000
	ppm := int64(math.Round(min(max(p, 0), 100) * scale / 100))
	rank := (ppm*n + scale - 1) / scale
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
