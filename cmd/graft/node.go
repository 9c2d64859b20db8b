package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/tlsutil"
)

// nodeFile is the JSON config file of `graft node --config`. Flags given
// on the command line override it.
type nodeFile struct {
	ID                   string   `json:"id"`
	Dir                  string   `json:"dir"`
	RaftAddr             string   `json:"raft_addr"`
	APIAddr              string   `json:"api_addr"`
	Peers                []string `json:"peers"`
	Bootstrap            bool     `json:"bootstrap"`
	ObjectStore          string   `json:"object_store"`
	AdoptBucket          bool     `json:"adopt_bucket"`
	MaxPagesPerCommit    *int     `json:"max_pages_per_commit"`
	MaxRequestBytes      *int     `json:"max_request_bytes"`
	MaxBufferBytes       *uint64  `json:"max_buffer_bytes"`
	MaxVolumeBufferBytes *uint64  `json:"max_volume_buffer_bytes"`
	LogLevel             string   `json:"log_level"`
	TLSCert              string   `json:"tls_cert"`
	TLSKey               string   `json:"tls_key"`
	TLSCA                string   `json:"tls_ca"`
	AuthKey              string   `json:"auth_key"`
	LogFormat            string   `json:"log_format"`
}

type peerList []cluster.Peer

func (p *peerList) String() string {
	var s []string
	for _, x := range *p {
		s = append(s, x.String())
	}
	return strings.Join(s, " ")
}

func (p *peerList) Set(v string) error {
	peer, err := cluster.ParsePeer(v)
	if err != nil {
		return err
	}
	*p = append(*p, peer)
	return nil
}

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := cluster.DefaultConfig()
	var file nodeFile
	if path := findFlag(args, "config"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return fmt.Errorf("parse config %s: %w", path, err)
		}
		cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.APIAddr, cfg.Bootstrap = file.ID, file.Dir, file.RaftAddr, file.APIAddr, file.Bootstrap
		cfg.ObjectStore, cfg.AdoptBucket = file.ObjectStore, file.AdoptBucket
		for _, p := range file.Peers {
			peer, err := cluster.ParsePeer(p)
			if err != nil {
				return fmt.Errorf("config %s: %w", path, err)
			}
			cfg.Peers = append(cfg.Peers, peer)
		}
		setIf(&cfg.Limits.MaxPagesPerCommit, file.MaxPagesPerCommit)
		setIf(&cfg.Limits.MaxRequestBytes, file.MaxRequestBytes)
		setIf(&cfg.Limits.MaxBufferBytes, file.MaxBufferBytes)
		setIf(&cfg.Limits.MaxVolumeBufferBytes, file.MaxVolumeBufferBytes)
	}
	logLevel, logFormat := or(file.LogLevel, "info"), or(file.LogFormat, "text")
	sec := securityFlags{tls: tlsutil.Files{Cert: file.TLSCert, Key: file.TLSKey, CA: file.TLSCA}, authKey: file.AuthKey}

	fs := newFlags("node", "node --id ID --dir DIR --raft-addr HOST:PORT --api-addr HOST:PORT [--peer ID,RAFT,API]... [--bootstrap]", stderr)
	fs.String("config", "", "JSON config file (keys: id, dir, raft_addr, api_addr, peers, bootstrap, object_store, adopt_bucket, max_*, log_*, tls_cert, tls_key, tls_ca, auth_key); flags override it")
	fs.StringVar(&cfg.ID, "id", cfg.ID, "unique, stable node ID")
	fs.StringVar(&cfg.Dir, "dir", cfg.Dir, "data directory (Raft log and snapshots)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "host:port for Raft traffic")
	fs.StringVar(&cfg.APIAddr, "api-addr", cfg.APIAddr, "host:port for the client API, /healthz, /readyz and /metrics")
	peers := peerList(cfg.Peers)
	fs.Var(&peers, "peer", "a cluster member as id,raft_addr,api_addr (repeat for each, this node included)")
	var dial peerList
	fs.Var(&dial, "dial", "reach a peer through other addresses than it advertises, as id,raft_addr,api_addr (a proxy; repeatable)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", cfg.Bootstrap, "bootstrap a new cluster from --peer when the node has no state (safe on every peer)")
	fs.StringVar(&cfg.ObjectStore, "object-store", cfg.ObjectStore, "object store URL to flush to: s3://bucket/prefix?endpoint=...&region=..., file:///abs/dir or mem:// (empty: no flushing)")
	fs.BoolVar(&cfg.AdoptBucket, "adopt-bucket", cfg.AdoptBucket, "take over an object-store prefix whose identity object names another cluster (overwrite it with this cluster's ID) instead of refusing to flush there; only when that cluster is gone")
	fs.DurationVar(&cfg.Flush.Interval, "flush-interval", cfg.Flush.Interval, "how often the leader checks the flush triggers (0: flush only on request)")
	fs.DurationVar(&cfg.Flush.MaxAge, "flush-max-age", cfg.Flush.MaxAge, "flush once the oldest unflushed commit is this old")
	fs.Uint64Var(&cfg.Flush.TargetBytes, "flush-target-bytes", cfg.Flush.TargetBytes, "flush once this many page bytes are buffered")
	fs.Uint64Var(&cfg.Flush.MaxRoundBytes, "flush-max-round-bytes", cfg.Flush.MaxRoundBytes, "page bytes one volume puts in one segment")
	fs.IntVar(&cfg.Flush.CheckpointRecords, "checkpoint-records", cfg.Flush.CheckpointRecords, "write a volume's checkpoint once this many log records follow its newest one (0: no count trigger)")
	fs.Uint64Var(&cfg.Flush.CheckpointBytes, "checkpoint-bytes", cfg.Flush.CheckpointBytes, "write a volume's checkpoint once this many page bytes were flushed after its newest one (0: no byte trigger; both 0: no checkpoints)")
	fs.BoolVar(&cfg.Flush.CheckpointDeltas, "checkpoint-deltas", cfg.Flush.CheckpointDeltas, "after each round write a small delta per flushed volume (pages changed since its checkpoint; one extra PUT per volume per round) so cold head reads cost <= 4 requests (needs checkpoints; off: the leader deletes old deltas)")
	fs.IntVar(&cfg.Flush.DeltaMaxPages, "delta-max-pages", cfg.Flush.DeltaMaxPages, "checkpoint a volume at once when its delta names more pages than this (0: only the checkpoint triggers)")
	fs.Uint64Var(&cfg.Flush.RetainLSNs, "retain-lsns", cfg.Flush.RetainLSNs, "keep each volume's last N snapshots readable; older ones answer out_of_range and GC deletes what only they need (0: keep everything; same on every node)")
	fs.DurationVar(&cfg.Flush.RetainHistory, "retain-history", cfg.Flush.RetainHistory, "keep each volume's snapshots of this long readable (at checkpoint granularity); older ones answer out_of_range and GC deletes what only they need (0: keep everything; same on every node)")
	fs.DurationVar(&cfg.Flush.GCInterval, "gc-interval", cfg.Flush.GCInterval, "how often the leader runs a retention GC step (0: never)")
	fs.DurationVar(&cfg.Flush.GCGrace, "gc-grace", cfg.Flush.GCGrace, "how long a committed GC round waits before deleting, so in-flight reads and edges finish")
	fs.Float64Var(&cfg.Flush.CompactBelow, "compact-below", cfg.Flush.CompactBelow, "with retention, compact at checkpoint time every segment only checkpoints still need whose needed fraction is below this, rewriting the retained checkpoints that name it (0: never; at most 1)")
	fs.Uint64Var(&cfg.Flush.CompactSegmentBytes, "compact-segment-bytes", cfg.Flush.CompactSegmentBytes, "page bytes of one compacted segment at most")
	fs.Float64Var(&cfg.Flush.CompactMaxFraction, "compact-max-fraction", cfg.Flush.CompactMaxFraction, "page versions one checkpoint step compacts at most, as a fraction of the volume's pages (at least one compacted segment's worth; 0: no bound)")
	fs.IntVar(&cfg.Cache.PageCacheBytes, "page-cache-bytes", cfg.Cache.PageCacheBytes, "bytes of flushed pages cached for reads")
	fs.IntVar(&cfg.Limits.MaxPagesPerCommit, "max-pages-per-commit", cfg.Limits.MaxPagesPerCommit, "pages allowed in one commit")
	fs.IntVar(&cfg.Limits.MaxRequestBytes, "max-request-bytes", cfg.Limits.MaxRequestBytes, "encoded bytes allowed in one commit request")
	fs.Uint64Var(&cfg.Limits.MaxBufferBytes, "max-buffer-bytes", cfg.Limits.MaxBufferBytes, "page bytes the node may buffer across volumes before commits get resource_exhausted")
	fs.Uint64Var(&cfg.Limits.MaxVolumeBufferBytes, "max-volume-buffer-bytes", cfg.Limits.MaxVolumeBufferBytes, "page bytes one volume may buffer")
	fs.IntVar(&cfg.Raft.MaxAppendEntries, "raft-max-append-entries", cfg.Raft.MaxAppendEntries, "Raft group-commit batch: entries per log write and per AppendEntries")
	fs.IntVar(&cfg.MaxCommitBatch, "max-commit-batch", cfg.MaxCommitBatch, "commits the leader coalesces into one Raft entry when they arrive concurrently (1: one entry per commit)")
	fs.IntVar(&cfg.MaxCommitBatchBytes, "max-commit-batch-bytes", cfg.MaxCommitBatchBytes, "commit bytes in one batched Raft entry")
	fs.IntVar(&cfg.CommitBatchInFlight, "commit-batch-in-flight", cfg.CommitBatchInFlight, "batched Raft entries in flight before new commits queue for the next batch")
	fs.Uint64Var(&cfg.Raft.SnapshotThresholdBytes, "raft-snapshot-threshold-bytes", cfg.Raft.SnapshotThresholdBytes, "take a Raft snapshot once the log applied since the last one holds this many bytes (0: by entry count only)")
	fs.DurationVar(&cfg.Raft.HeartbeatTimeout, "raft-heartbeat-timeout", cfg.Raft.HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&cfg.Raft.ElectionTimeout, "raft-election-timeout", cfg.Raft.ElectionTimeout, "Raft election timeout")
	fs.StringVar(&cfg.Raft.LogStore, "raft-log-store", cfg.Raft.LogStore, "Raft log store: wal (hashicorp/raft-wal, 1 fdatasync per append) or bolt (raft-boltdb/v2, 2; the only one --unsafe-no-fsync works with); default: the store the data dir holds, else wal; a dir is refused by the other store")
	fs.BoolVar(&cfg.Raft.NoSync, "unsafe-no-fsync", false, "UNSAFE: do not fsync the Raft log (benchmarks of fsync cost only)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve /debug/pprof/ on the API address")
	memLimit := fs.Int64("memory-limit", -1, "soft memory limit of the Go runtime, bytes (debug.SetMemoryLimit), so GC headroom does not double the node's resident set; -1: --max-buffer-bytes + 96 MiB (log cache, requests, flush segments), none when the buffer is unlimited; 0: none (GOGC alone); the GOMEMLIMIT environment variable wins")
	fs.StringVar(&cfg.RaftLogLevel, "raft-log-level", cfg.RaftLogLevel, "hashicorp/raft log level: trace, debug, info, warn, error")
	fs.StringVar(&logLevel, "log-level", logLevel, "log level: debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", logFormat, "log format: text or json (hashicorp/raft's lines too, with node=ID on every line)")
	logJSON := fs.Bool("log-json", false, "log JSON lines: --log-format json")
	sec.register(fs, true)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *logJSON {
		logFormat = "json"
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("node: unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.TLS, cfg.Auth, err = sec.load(); err != nil {
		return err
	}
	cfg.Peers = peers
	if len(dial) > 0 {
		cfg.Dial = map[string]cluster.Peer{}
		for _, d := range dial {
			cfg.Dial[d.ID] = d
		}
	}
	logger, err := newLogger(stderr, logLevel, logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	if limit := memoryLimit(*memLimit, cfg.Limits.MaxBufferBytes); limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
		logger.Debug("go runtime soft memory limit", "bytes", limit)
	}
	if cfg.Auth == nil {
		logger.Warn("authentication is off: anyone who reaches the API port may commit, read and change membership (--auth-key turns it on)")
	}
	reloadOnHUP(ctx, cfg.TLS, logger)
	n, err := cluster.Open(ctx, cfg)
	if err != nil {
		return err
	}
	var removed bool
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "node", cfg.ID)
	case <-n.Removed():
		removed = true
	}
	cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = n.Close(cctx)
	if removed {
		return codedError{code: exitRemoved, err: errors.Join(fmt.Errorf("node %s was removed from the cluster; wipe %s before adding it back", cfg.ID, cfg.Dir), err)}
	}
	return err
}

// exitRemoved is graft node's exit status once the node was removed from
// the cluster: a supervisor must not restart it on its stale data
// (deploy/graft-node.service: RestartPreventExitStatus=3).
const exitRemoved = 3

// memoryLimit is the node's soft memory limit for --memory-limit flag
// (-1: derived from the page buffer's limit) or 0 for none.
func memoryLimit(flag int64, maxBufferBytes uint64) int64 {
	switch {
	case flag >= 0:
		return flag
	case maxBufferBytes == 0 || maxBufferBytes > 1<<50:
		return 0
	}
	return int64(maxBufferBytes) + 96<<20
}

// findFlag returns the value of --name (or -name) in args, before parsing.
func findFlag(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}
