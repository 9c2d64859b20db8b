package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graft-cluster/graft/cluster"
)

// Targets of a comparison, the systems that run the same workload.
const (
	// TargetGraft is a three-node graft cluster of real processes (graft
	// dev: three graft node processes and the embedded S3 server), driven
	// in-process through the graft client.
	TargetGraft = "graft"
	// TargetGraftS3 is TargetGraft with CompareConfig.S3Latency added to
	// every request of the embedded S3 server.
	TargetGraftS3 = "graft-s3"
	// TargetEtcd is a three-member etcd cluster of real processes, driven
	// by the etcd load generator of bench/peers/etcd.
	TargetEtcd = "etcd"
	// TargetRaft is three bare hashicorp/raft processes (graft bench
	// raft-peer: graft's Raft settings and log store, a no-op FSM), the
	// load applied on the leader.
	TargetRaft = "raft"
	// TargetGraftSecure is TargetGraft with TLS on every link (graft dev
	// --tls: HTTPS to the nodes, mutual TLS between them) and bearer
	// tokens checked on every call (graft dev --auth): the cost of
	// security, next to TargetGraft in the same run (graft bench compare
	// --secure).
	TargetGraftSecure = "graft-secure"
	// TargetDisk is the disk floor: one writer appending the workload's
	// payload to a file and fdatasync-ing it.
	TargetDisk = "disk"

	// TargetGraftBolt and TargetGraftWAL are TargetGraft with the Raft log
	// store named (graft node --raft-log-store); TargetRaftBolt and
	// TargetRaftWAL the same for bare Raft. TargetGraft and TargetRaft use
	// the default store (cluster.DefaultConfig); the comparison runs the
	// other store too, which is the evidence for that default.
	TargetGraftBolt = "graft-" + cluster.LogStoreBolt
	TargetGraftWAL  = "graft-" + cluster.LogStoreWAL
	TargetRaftBolt  = "raft-" + cluster.LogStoreBolt
	TargetRaftWAL   = "raft-" + cluster.LogStoreWAL

	// TargetGraftNoBatch is TargetGraft with commit batching off (graft
	// node --max-commit-batch 1): one Raft entry per commit, the A/B of
	// batching.
	TargetGraftNoBatch = "graft-nobatch"
	// TargetGraftSpread is TargetGraft with the clients spread over the
	// three nodes (client w talks only to node w mod 3), so two thirds of
	// the commits are forwarded by a follower: what a deployment whose
	// clients do not know the leader sees.
	TargetGraftSpread = "graft-spread"
)

// DefaultLogStore is the Raft log store graft nodes use by default.
var DefaultLogStore = cluster.DefaultLogStore

// AltLogStore is the log store that is not the default.
var AltLogStore = func() string {
	if DefaultLogStore == cluster.LogStoreWAL {
		return cluster.LogStoreBolt
	}
	return cluster.LogStoreWAL
}()

// AllTargets lists the targets a comparison runs by default, in the order
// a workload runs them.
var AllTargets = []string{TargetGraft, TargetGraftS3, TargetGraftSpread, "graft-" + AltLogStore, TargetEtcd, TargetRaft, "raft-" + AltLogStore, TargetDisk}

// KnownTargets lists every target name.
var KnownTargets = []string{TargetGraft, TargetGraftS3, TargetGraftSecure, TargetGraftBolt, TargetGraftWAL, TargetGraftNoBatch, TargetGraftSpread, TargetEtcd, TargetRaft, TargetRaftBolt, TargetRaftWAL, TargetDisk}

// targetLogStore returns the Raft log store a graft or raft target runs.
func targetLogStore(t string) string {
	switch t {
	case TargetGraftBolt, TargetRaftBolt:
		return cluster.LogStoreBolt
	case TargetGraftWAL, TargetRaftWAL:
		return cluster.LogStoreWAL
	}
	return DefaultLogStore
}

// Workload is one shape of load: Clients writers, one volume each, each
// commit carrying Pages pages of 4 KiB. With Rate 0 each writer is a closed
// loop (its next commit when the previous is acknowledged); with Rate > 0
// the load is an open loop at Rate commits/s in all, spread evenly over
// the writers (writer v's k-th commit is due at (k*Clients+v)/Rate s), and
// latency is from when a commit was due, so a writer that falls behind
// counts its wait. Only graft targets run open-loop workloads.
type Workload struct {
	Clients int `json:"clients"`
	Pages   int `json:"pages"`
	Rate    int `json:"rate,omitempty"`
}

// String formats w as "CLIENTSxPAGES" or "CLIENTSxPAGES@RATE", the forms
// ParseWorkload reads.
func (w Workload) String() string {
	if w.Rate > 0 {
		return fmt.Sprintf("%dx%d@%d", w.Clients, w.Pages, w.Rate)
	}
	return fmt.Sprintf("%dx%d", w.Clients, w.Pages)
}

// ParseWorkload parses "CLIENTSxPAGES", such as "64x1", or
// "CLIENTSxPAGES@RATE", such as "1000x1@2000" (open loop, commits/s).
func ParseWorkload(s string) (Workload, error) {
	shape, rate, open := strings.Cut(s, "@")
	c, p, ok := strings.Cut(shape, "x")
	if ok {
		cn, err1 := strconv.Atoi(c)
		pn, err2 := strconv.Atoi(p)
		rn, err3 := 0, error(nil)
		if open {
			rn, err3 = strconv.Atoi(rate)
			if rn < 1 {
				err3 = ErrInvalidArgument
			}
		}
		if err1 == nil && err2 == nil && err3 == nil && cn >= 1 && pn >= 1 {
			return Workload{Clients: cn, Pages: pn, Rate: rn}, nil
		}
	}
	return Workload{}, fmt.Errorf("parse workload %q: want CLIENTSxPAGES or CLIENTSxPAGES@RATE, all >= 1: %w", s, ErrInvalidArgument)
}

// graftTarget reports whether t is a graft cluster (the targets that run
// open-loop workloads).
func graftTarget(t string) bool { return strings.HasPrefix(t, "graft") }

// CompareConfig configures RunCompare. Start from DefaultCompareConfig.
type CompareConfig struct {
	// OutDir receives one JSON file per cell, results.json, results.md,
	// latency.svg and the servers' logs. Required; created if missing.
	OutDir string
	// WorkDir holds every target's data directories, one per cell, each
	// removed after its cell (kept when the cell fails; its *.log files are
	// copied to OutDir/CELL-logs). Put it on the disk under test: all
	// targets share it.
	// Required; created if missing.
	WorkDir string
	// GraftBin is the graft binary: `graft dev` for the graft targets and
	// `graft bench raft-peer` for the bare-Raft one. Required.
	GraftBin string
	// EtcdBin is the etcd server binary and EtcdLoadBin the etcd load
	// generator (both built from bench/peers/etcd). Required when Targets
	// include TargetEtcd.
	EtcdBin, EtcdLoadBin string
	// Targets run in this order within each workload. Default AllTargets.
	Targets []string
	// Workloads run in this order, each running every target before the
	// next starts, so that drift of the machine hits all targets alike.
	// Default 1x1, 1x16, 64x1, 64x16.
	Workloads []Workload
	// S3Workloads are the workloads TargetGraftS3 runs in (it is skipped in
	// the others). Default 1x1 and 64x1.
	S3Workloads []Workload
	// SpreadWorkloads are the workloads TargetGraftSpread runs in. Default
	// 64x1.
	SpreadWorkloads []Workload
	// S3Latency is TargetGraftS3's added S3 latency. Default 50ms.
	S3Latency time.Duration
	// Duration is each cell's measured time, after Warmup. Default 10s.
	Duration time.Duration
	// Warmup runs before each cell's measurement, unrecorded. Default 1s.
	Warmup time.Duration
	// PortBase places the servers on loopback: graft dev on PortBase+1..3
	// (API), +101..103 (Raft) and +301 (S3); etcd on +401..403 (client
	// gRPC), +411..413 (peer) and +421..423 (client HTTP); bare Raft on +501..503 (Raft) and +511..513
	// (control). Default 17500.
	PortBase int
	// StartTimeout bounds a cluster's start, until it serves. Default 60s.
	StartTimeout time.Duration
	// StopGrace is how long a server may take to stop after SIGINT/SIGTERM
	// before it is killed. Default 20s.
	StopGrace time.Duration
	// EtcdQuotaBytes is etcd's --quota-backend-bytes. Default 8 GiB, far
	// above what a 64-client, 16-page cell of a few minutes writes.
	EtcdQuotaBytes int64
	// GraftNodeArgs are more flags for every graft node of every graft
	// target (an A/B of a node setting). Default none.
	GraftNodeArgs []string
	// Label is free text recorded with the results (a commit, a note).
	Label string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// DefaultCompareConfig returns a CompareConfig with every default set; the
// caller sets OutDir, WorkDir, GraftBin and the etcd binaries.
func DefaultCompareConfig() CompareConfig {
	return CompareConfig{
		Targets:         slices.Clone(AllTargets),
		Workloads:       []Workload{{Clients: 1, Pages: 1}, {Clients: 1, Pages: 16}, {Clients: 64, Pages: 1}, {Clients: 64, Pages: 16}, {Clients: 1000, Pages: 1, Rate: 2000}},
		S3Workloads:     []Workload{{Clients: 1, Pages: 1}, {Clients: 64, Pages: 1}},
		SpreadWorkloads: []Workload{{Clients: 64, Pages: 1}},
		S3Latency:       50 * time.Millisecond,
		Duration:        10 * time.Second,
		Warmup:          time.Second,
		PortBase:        17500,
		StartTimeout:    60 * time.Second,
		StopGrace:       20 * time.Second,
		EtcdQuotaBytes:  8 << 30,
	}
}

// Validate reports the first missing or out-of-range field, wrapping
// ErrInvalidArgument.
func (c CompareConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("validate compare config: "+format+": %w", append(a, ErrInvalidArgument)...)
	}
	switch {
	case c.OutDir == "" || c.WorkDir == "":
		return bad("out dir and work dir are required")
	case c.GraftBin == "":
		return bad("graft binary is required")
	case len(c.Targets) == 0 || len(c.Workloads) == 0:
		return bad("need at least one target and one workload")
	case c.Duration <= 0 || c.Warmup < 0:
		return bad("duration %s must be > 0 and warmup %s >= 0", c.Duration, c.Warmup)
	case c.PortBase < 1 || c.PortBase+520 > 65535:
		return bad("port base %d leaves no room for port-base+520", c.PortBase)
	case c.StartTimeout <= 0 || c.StopGrace <= 0:
		return bad("start timeout and stop grace must be > 0")
	case c.EtcdQuotaBytes <= 0:
		return bad("etcd quota %d must be > 0", c.EtcdQuotaBytes)
	}
	for _, t := range c.Targets {
		if !slices.Contains(KnownTargets, t) {
			return bad("unknown target %q (want one of %s)", t, strings.Join(AllTargets, ", "))
		}
		if t == TargetEtcd && (c.EtcdBin == "" || c.EtcdLoadBin == "") {
			return bad("target etcd needs the etcd and etcd-load binaries")
		}
	}
	for _, w := range append(append(slices.Clone(c.Workloads), c.S3Workloads...), c.SpreadWorkloads...) {
		if w.Clients < 1 || w.Pages < 1 {
			return bad("workload %s needs clients and pages >= 1", w)
		}
	}
	return nil
}

// CompareReport is everything a comparison measured; results.json holds
// it.
type CompareReport struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Label    string    `json:"label,omitempty"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	// Cells in the order they ran.
	Cells []CellResult `json:"cells"`
	// Ratios per workload, and the goals checked against them.
	Ratios []RatioRow `json:"ratios"`
	Goals  []Goal     `json:"goals"`
}

// Machine describes where the comparison ran.
type Machine struct {
	NumCPU      int    `json:"num_cpu"`
	CPUModel    string `json:"cpu_model,omitempty"`
	Kernel      string `json:"kernel,omitempty"`
	GoVersion   string `json:"go_version"`
	EtcdVersion string `json:"etcd_version,omitempty"`
	// LoadAvgStart and LoadAvgEnd are /proc/loadavg's 1, 5 and 15 minute
	// averages before the first cell and after the last: a busy machine
	// makes every number worse.
	LoadAvgStart string `json:"loadavg_start,omitempty"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
	// FsyncP50MS is the disk target's p50 in the 1-client 1-page workload
	// (append + fdatasync of 4160 bytes), when it ran.
	FsyncP50MS float64 `json:"fsync_p50_ms,omitempty"`
}

// Settings records the run's configuration.
type Settings struct {
	Targets      []string   `json:"targets"`
	Workloads    []Workload `json:"workloads"`
	S3Workloads  []Workload `json:"s3_workloads"`
	S3LatencyMS  float64    `json:"s3_latency_ms"`
	DurationSec  float64    `json:"duration_seconds"`
	WarmupSec    float64    `json:"warmup_seconds"`
	EtcdQuota    int64      `json:"etcd_quota_backend_bytes,omitempty"`
	WorkDir      string     `json:"work_dir"`
	RaftCmdBytes []int      `json:"raft_command_bytes"` // per workload, in Workloads order
}

// RunCompare runs every target under every workload, interleaved (all
// targets of a workload, then the next workload), each cell on a fresh
// cluster: start it, wait until it serves, warm up, measure, read its
// processes' memory, stop it. A failing cell is recorded with its error and
// the run goes on. It writes each cell's JSON as it finishes and, at the
// end (also when ctx ends early), results.json, results.md and latency.svg
// in OutDir. It returns the report, and ctx's error if ctx ended first.
func RunCompare(ctx context.Context, cfg CompareConfig) (*CompareReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{cfg.OutDir, cfg.WorkDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	var err error
	if cfg.WorkDir, err = filepath.Abs(cfg.WorkDir); err != nil {
		return nil, err
	}
	rep := &CompareReport{Started: time.Now().UTC(), Label: cfg.Label, Machine: readMachine(ctx, cfg)}
	rep.Settings = Settings{
		Targets: cfg.Targets, Workloads: cfg.Workloads, S3Workloads: cfg.S3Workloads,
		S3LatencyMS: Millis(cfg.S3Latency), DurationSec: cfg.Duration.Seconds(), WarmupSec: cfg.Warmup.Seconds(),
		WorkDir: cfg.WorkDir,
	}
	if slices.Contains(cfg.Targets, TargetEtcd) {
		rep.Settings.EtcdQuota = cfg.EtcdQuotaBytes
	}
	for _, w := range cfg.Workloads {
		rep.Settings.RaftCmdBytes = append(rep.Settings.RaftCmdBytes, RaftCommandBytes(w.Pages))
	}
	r := &comparer{cfg: cfg, log: log}
	var runErr error
cells:
	for _, w := range cfg.Workloads {
		for _, t := range cfg.Targets {
			if t == TargetGraftS3 && !slices.Contains(cfg.S3Workloads, w) ||
				t == TargetGraftSpread && !slices.Contains(cfg.SpreadWorkloads, w) ||
				w.Rate > 0 && !graftTarget(t) {
				continue
			}
			if ctx.Err() != nil {
				runErr = ctx.Err()
				break cells
			}
			cell := r.runCell(ctx, t, w)
			rep.Cells = append(rep.Cells, cell)
			if err := writeJSONFile(filepath.Join(cfg.OutDir, cellFileName(t, w)), cell); err != nil {
				return rep, err
			}
		}
	}
	if runErr == nil {
		runErr = ctx.Err()
	}
	rep.Finished = time.Now().UTC()
	rep.Machine.LoadAvgEnd = loadAvg()
	if d := findCell(rep.Cells, TargetDisk, Workload{Clients: 1, Pages: 1}); d.ok() {
		rep.Machine.FsyncP50MS = d.P50MS
	}
	rep.Ratios = ratios(rep.Cells, cfg.Workloads)
	rep.Goals = goals(rep.Cells)
	if err := writeReport(cfg.OutDir, rep); err != nil {
		return rep, err
	}
	return rep, runErr
}

// cellFileName is the name of a cell's JSON file in OutDir.
func cellFileName(target string, w Workload) string {
	return cellName(target, w) + ".json"
}

// cellName names a cell's files.
func cellName(target string, w Workload) string {
	if w.Rate > 0 {
		return fmt.Sprintf("%s-c%d-p%d-r%d", target, w.Clients, w.Pages, w.Rate)
	}
	return fmt.Sprintf("%s-c%d-p%d", target, w.Clients, w.Pages)
}

// comparer runs cells.
type comparer struct {
	cfg CompareConfig
	log *slog.Logger
}

// runCell runs one target under one workload and always returns a cell,
// with Error set when it failed.
func (r *comparer) runCell(ctx context.Context, target string, w Workload) CellResult {
	name := cellName(target, w)
	dir := filepath.Join(r.cfg.WorkDir, name)
	r.log.Info("cell start", "target", target, "clients", w.Clients, "pages", w.Pages)
	started := time.Now().UTC()
	var (
		cell CellResult
		err  error
	)
	if err = os.RemoveAll(dir); err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		switch target {
		case TargetGraft, TargetGraftBolt, TargetGraftWAL:
			cell, err = r.runGraft(ctx, name, dir, w, graftCell{logStore: targetLogStore(target)})
		case TargetGraftS3:
			cell, err = r.runGraft(ctx, name, dir, w, graftCell{s3Latency: r.cfg.S3Latency, logStore: DefaultLogStore})
		case TargetGraftNoBatch:
			cell, err = r.runGraft(ctx, name, dir, w, graftCell{logStore: DefaultLogStore, nodeArgs: []string{"--max-commit-batch", "1"}})
		case TargetGraftSpread:
			cell, err = r.runGraft(ctx, name, dir, w, graftCell{logStore: DefaultLogStore, spread: true})
		case TargetGraftSecure:
			cell, err = r.runGraft(ctx, name, dir, w, graftCell{logStore: DefaultLogStore, secure: true})
		case TargetEtcd:
			cell, err = r.runEtcd(ctx, name, dir, w)
		case TargetRaft, TargetRaftBolt, TargetRaftWAL:
			cell, err = r.runRaft(ctx, name, dir, w, targetLogStore(target))
		case TargetDisk:
			cell, err = r.runDisk(ctx, dir, w)
		}
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w", ctx.Err()) // the numbers cover part of the window only
	}
	cell.Target, cell.Clients, cell.Pages, cell.Rate, cell.Started = target, w.Clients, w.Pages, w.Rate, started
	if err != nil {
		cell.Error = err.Error()
		r.log.Error("cell failed", "target", target, "clients", w.Clients, "pages", w.Pages, "err", err, "logs", r.cfg.OutDir)
		copyLogs(dir, filepath.Join(r.cfg.OutDir, name+"-logs"))
		return cell
	}
	if rerr := os.RemoveAll(dir); rerr != nil {
		r.log.Warn("remove cell dir", "dir", dir, "err", rerr)
	}
	r.log.Info("cell done", "target", target, "clients", w.Clients, "pages", w.Pages,
		"p50_ms", round3(cell.P50MS), "p99_ms", round3(cell.P99MS), "ops_per_sec", round3(cell.OpsPerSec), "commits", cell.Commits)
	return cell
}

// checkPortsFree fails when a port the next cluster needs is taken, so a
// stale server is reported as such rather than as a mysterious start
// failure.
func checkPortsFree(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("port %d is not free (a server left from another run?): %w", p, err)
		}
		l.Close()
	}
	return nil
}

// readMachine describes this machine.
func readMachine(ctx context.Context, cfg CompareConfig) Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if slices.Contains(cfg.Targets, TargetEtcd) {
		m.EtcdVersion = etcdVersion(ctx, cfg.EtcdBin)
	}
	return m
}

// loadAvg returns /proc/loadavg's three averages, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// copyLogs copies every *.log file under dir into dst (flattened, named
// after their relative path), best effort: a failed cell's server logs.
func copyLogs(dir, dst string) {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
			return nil
		}
		rel, rerr := filepath.Rel(dir, path)
		if rerr != nil {
			return nil
		}
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil
		}
		if os.MkdirAll(dst, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(dst, strings.ReplaceAll(rel, string(filepath.Separator), "_")), b, 0o644)
		}
		return nil
	})
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
