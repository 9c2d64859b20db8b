package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/graft-cluster/graft/edge"
	"github.com/graft-cluster/graft/tlsutil"
)

func runEdge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := edge.DefaultConfig()
	fs := newFlags("edge", "edge --listen ADDR --upstream URL[,URL...] [--object-store URL] [--cache-bytes 256MiB] [--cache-dir DIR --disk-bytes 1GiB] [--memory-limit B]", stderr)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to serve graft.v1.VolumeService, /healthz, /readyz and /metrics on")
	upstream := fs.String("upstream", "", "comma-separated API endpoints of the cluster's nodes (http://host:port)")
	fs.StringVar(&cfg.ObjectStore, "object-store", "", "the cluster's object store URL: flushed pages are read from it directly (see graft node --help)")
	cacheBytes := byteSize(cfg.CacheBytes)
	fs.Var(&cacheBytes, "cache-bytes", "bound of the in-memory cache (suffixes KiB, MiB, GiB)")
	fs.StringVar(&cfg.CacheDir, "cache-dir", "", "keep a disk tier of the cache here (page versions and snapshot entries), so a restarted edge starts warm")
	diskBytes := byteSize(cfg.DiskBytes)
	fs.Var(&diskBytes, "disk-bytes", "bound of the disk tier (suffixes KiB, MiB, GiB)")
	memLimit := byteSize(-1)
	fs.Var(&memLimit, "memory-limit", "Go memory limit of the process (suffixes KiB, MiB, GiB; 0: none); default 1.25 x --cache-bytes + 48 MiB, or GOMEMLIMIT when set")
	fs.IntVar(&cfg.MaxPagesPerRead, "max-pages-per-read", cfg.MaxPagesPerRead, "cap on the pages of one ReadPages call; set it to the cluster's")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	var sec securityFlags
	sec.register(fs, false)
	caFile := fs.String("ca", "", "PEM CA bundle to verify https:// upstream nodes with (default: the system roots)")
	fs.StringVar(&cfg.UpstreamToken, "upstream-token", "", "the edge's own token (read scope) for upstream calls made for no single caller (shared watch streams); default: the caller's")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	var err error
	if cfg.TLS, cfg.Auth, err = sec.load(); err != nil {
		return err
	}
	if *caFile != "" {
		if cfg.UpstreamCAs, err = tlsutil.LoadPool(*caFile); err != nil {
			return err
		}
	}
	for _, u := range strings.Split(*upstream, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.Upstream = append(cfg.Upstream, u)
		}
	}
	cfg.CacheBytes = int64(cacheBytes)
	cfg.DiskBytes = int64(diskBytes)
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = logger.With("component", "edge")
	// The limit is the process's, so it is set here, not by edge.Run (graft
	// dev runs an edge inside a process with three nodes).
	switch limit := int64(memLimit); {
	case limit > 0:
		debug.SetMemoryLimit(limit)
	case limit == 0:
		debug.SetMemoryLimit(math.MaxInt64)
	case os.Getenv("GOMEMLIMIT") == "":
		debug.SetMemoryLimit(edge.MemoryLimit(cfg.CacheBytes))
	}
	cfg.Logger.Info("memory limit", "bytes", debug.SetMemoryLimit(-1), "cache_bytes", cfg.CacheBytes)
	reloadOnHUP(ctx, cfg.TLS, cfg.Logger)
	return edge.Run(ctx, cfg, nil)
}

// byteSize is a flag of a byte count with an optional binary suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// parseByteSize parses "256MiB", "1GiB", "64KiB", "4096" (also KB, MB, GB,
// K, M, G, taken as binary).
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("byte size %q: want a count like 256MiB", s)
	}
	return n * mult, nil
}
