package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/edge"
	"github.com/graft-cluster/graft/volume"
)

// Phase targets of the edge benchmark.
const (
	EdgeTargetEdge   = "edge"   // reads through one `graft edge` process
	EdgeTargetDirect = "direct" // reads from the cluster's nodes
)

// EdgeConfig configures `graft bench edge`. Start from DefaultEdgeConfig.
type EdgeConfig struct {
	// GraftBin is the graft binary run as `graft dev` and `graft edge`.
	// Required.
	GraftBin string
	// OutDir receives the process logs. Required.
	OutDir string
	// WorkDir holds the cluster's data. Required.
	WorkDir string
	// PortBase: the nodes on +1..+3 (Raft +101..+103), the embedded S3
	// server on +301, the edge on +0. Default 18100.
	PortBase int
	// Clients is the number of closed-loop readers. Default 64.
	Clients int
	// Volumes and PagesPerVolume are the data set, loaded before measuring.
	// Default 10 x 10000 (100k pages, 400 MiB).
	Volumes        int
	PagesPerVolume int
	// BatchPages is the pages per commit of the load (<= the cluster's
	// max pages per commit). Default 256.
	BatchPages int
	// LoadParallel is the volumes loaded at a time. Default 2.
	LoadParallel int
	// ReadPages is the pages of one ReadPages call: consecutive pages
	// starting at the drawn one. Default 4.
	ReadPages int
	// Theta is the Zipf skew of the page choice (0 < theta < 1). Default
	// 0.99.
	Theta float64
	// Seed seeds every worker's generator (worker w uses Seed, w).
	Seed uint64
	// PrefillReads is the least reads made through the edge, unmeasured,
	// before round 1 (counts, so the fill does not depend on the machine's
	// speed); 0 starts round 1 on a cold cache. Default 40000.
	PrefillReads int
	// PrefillMaxReads lets the prefill go on past PrefillReads, in chunks
	// of PrefillChunk reads, until the cache is steady: full (its bytes at
	// least 85% of --cache-bytes) and a chunk's offload within
	// PrefillSteady of the previous chunk's; at most this many reads.
	// W-TinyLFU fills in two stages (everything is admitted until the
	// cache is full, then admission by frequency settles), so a fixed
	// count measures a cache still settling. Defaults 240000, 20000 and
	// 0.005; PrefillMaxReads <= PrefillReads: a fixed count.
	PrefillMaxReads, PrefillChunk int
	PrefillSteady                 float64
	// Rounds of (edge phase, direct phase). Default 2.
	Rounds int
	// Duration is the measured time of a phase, after Warmup. Defaults 10s
	// and 2s.
	Duration, Warmup time.Duration
	// CacheBytes is the edge's --cache-bytes. Default 320 MiB: 80% of the
	// 400 MiB data set; at 256 MiB no cache can reach 95% offload on this
	// stream (TestOptimalOffload: the static optimum is 95.28%).
	CacheBytes int64
	// StartTimeout bounds the start of the cluster and the edge; StopGrace
	// their stop. Defaults 60s and 15s.
	StartTimeout, StopGrace time.Duration
	// Logger logs progress. Default slog.Default().
	Logger *slog.Logger
}

// DefaultEdgeConfig returns an EdgeConfig with every default set.
func DefaultEdgeConfig() EdgeConfig {
	return EdgeConfig{
		PortBase: 18100, Clients: 64, Volumes: 10, PagesPerVolume: 10000, BatchPages: 256, LoadParallel: 2, ReadPages: 4,
		Theta: 0.99, Seed: 1, PrefillReads: 40000, PrefillMaxReads: 240000, PrefillChunk: 20000, PrefillSteady: 0.005, Rounds: 2, Duration: 10 * time.Second, Warmup: 2 * time.Second,
		CacheBytes: 320 << 20, StartTimeout: 60 * time.Second, StopGrace: 15 * time.Second,
	}
}

// Validate returns an error wrapping ErrInvalidArgument for the first
// missing or out-of-range field.
func (c EdgeConfig) Validate() error {
	bad := func(what string, v any) error {
		return fmt.Errorf("validate edge bench config: %s %v: %w", what, v, ErrInvalidArgument)
	}
	switch {
	case c.GraftBin == "" || c.OutDir == "" || c.WorkDir == "":
		return bad("graft binary, out dir, work dir", []string{c.GraftBin, c.OutDir, c.WorkDir})
	case c.PortBase < 1 || c.PortBase > 65535-301:
		return bad("port base", c.PortBase)
	case c.Clients < 1:
		return bad("clients", c.Clients)
	case c.Volumes < 1:
		return bad("volumes", c.Volumes)
	case c.PagesPerVolume < 1:
		return bad("pages per volume", c.PagesPerVolume)
	case c.BatchPages < 1:
		return bad("batch pages", c.BatchPages)
	case c.LoadParallel < 1:
		return bad("load parallel", c.LoadParallel)
	case c.ReadPages < 1 || c.ReadPages > c.PagesPerVolume:
		return bad("read pages", c.ReadPages)
	case !(c.Theta > 0 && c.Theta < 1):
		return bad("theta", c.Theta)
	case c.PrefillReads < 0 || c.PrefillMaxReads < 0 || (c.PrefillMaxReads > c.PrefillReads && c.PrefillChunk < 1):
		return bad("prefill reads, max reads, chunk", []int{c.PrefillReads, c.PrefillMaxReads, c.PrefillChunk})
	case c.PrefillSteady < 0:
		return bad("prefill steady", c.PrefillSteady)
	case c.Rounds < 1:
		return bad("rounds", c.Rounds)
	case c.Duration <= 0 || c.Warmup < 0:
		return bad("duration, warmup", []time.Duration{c.Duration, c.Warmup})
	case c.CacheBytes < 1:
		return bad("cache bytes", c.CacheBytes)
	case c.StartTimeout <= 0 || c.StopGrace <= 0:
		return bad("start timeout, stop grace", []time.Duration{c.StartTimeout, c.StopGrace})
	}
	return nil
}

// EdgePhase is one measured phase: one target, one round.
type EdgePhase struct {
	Round       int     `json:"round"`
	Target      string  `json:"target"` // EdgeTarget*
	PagesPerSec float64 `json:"pages_per_sec"`
	// ServedPages and OriginPages are the edge's page counters over the
	// measured window (edge phases only): all pages it served, and those
	// it fetched from the cluster or the bucket. Offload = 1 - origin/served.
	ServedPages int64   `json:"served_pages,omitempty"`
	OriginPages int64   `json:"origin_pages,omitempty"`
	Offload     float64 `json:"offload,omitempty"`
	CellResult
}

// EdgeSide sums up one target over all its phases.
type EdgeSide struct {
	Reads       int     `json:"reads"`
	Seconds     float64 `json:"seconds"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	PagesPerSec float64 `json:"pages_per_sec"`
}

// EdgeReport is the result of `graft bench edge`.
type EdgeReport struct {
	Settings struct {
		Clients        int     `json:"clients"`
		Volumes        int     `json:"volumes"`
		PagesPerVolume int     `json:"pages_per_volume"`
		ReadPages      int     `json:"read_pages"`
		Theta          float64 `json:"theta"`
		Seed           uint64  `json:"seed"`
		PrefillReads   int     `json:"prefill_reads"`
		PrefillMax     int     `json:"prefill_max_reads"`
		Rounds         int     `json:"rounds"`
		DurationS      float64 `json:"duration_s"`
		WarmupS        float64 `json:"warmup_s"`
		CacheBytes     int64   `json:"cache_bytes"`
		Snapshot       string  `json:"snapshot"`
	} `json:"settings"`
	NumCPU       int     `json:"num_cpu"`
	LoadAvgStart string  `json:"load_avg_start"`
	LoadAvgEnd   string  `json:"load_avg_end"`
	LoadSeconds  float64 `json:"load_seconds"` // committing and flushing the data set
	// PrefillSeconds is how long the prefill reads took; PrefillOffload
	// their offload (cold cache).
	PrefillSeconds float64 `json:"prefill_seconds"`
	PrefillOffload float64 `json:"prefill_offload"`
	// PrefillDone is the reads the prefill made; PrefillChunks the offload
	// of each of its chunks (the fill curve), PrefillSteady whether it
	// ended steady (else at PrefillMaxReads).
	PrefillDone   int       `json:"prefill_done"`
	PrefillChunks []float64 `json:"prefill_chunks,omitempty"`
	PrefillSteady bool      `json:"prefill_steady"`
	// OptimalOffload is the best offload any cache of the edge's page
	// capacity could reach on this read stream: it holds the most read
	// pages (a static optimum; W-TinyLFU stays below it).
	CapacityPages  int     `json:"capacity_pages"`
	OptimalOffload float64 `json:"optimal_offload"`

	Phases []EdgePhase `json:"phases"`
	Edge   EdgeSide    `json:"edge"`
	Direct EdgeSide    `json:"direct"`
	// Offload over every measured edge window; WarmOffload, which the goal
	// is judged on, over the warm ones: all after a prefill, else rounds 2
	// and later (round 1's window still fills the cold cache; with one
	// round, the same as Offload). The
	// ratios are edge/direct over all rounds.
	Offload       float64 `json:"offload"`
	WarmOffload   float64 `json:"warm_offload"`
	P50Ratio      float64 `json:"p50_ratio"`
	PagesPerSecX  float64 `json:"pages_per_sec_ratio"`
	EdgeHWMKiB    int64   `json:"edge_vm_hwm_kib"`
	EdgeRSSKiB    int64   `json:"edge_vm_rss_kib"`
	HWMOverCache  float64 `json:"edge_hwm_over_cache_bytes"`
	GoalOffload   bool    `json:"goal_offload_95"`
	GoalP50       bool    `json:"goal_p50_half"`
	GoalPagesPerS bool    `json:"goal_pages_per_sec_3x"`
}

// edgeSample is what one phase measured, before summing up.
type edgeSample struct {
	round    int
	target   string
	samples  []time.Duration
	elapsed  time.Duration
	clients  int
	pages    int
	counters [2]pageCounters // the edge's counters at the window's start and end
}

// pageCounters are the edge's graft_edge_pages_total by source.
type pageCounters map[string]int64

// served is every page the edge served; origin those it fetched.
func (c pageCounters) served() int64 { return c["cache"] + c["upstream"] + c["bucket"] }
func (c pageCounters) origin() int64 { return c["upstream"] + c["bucket"] }

// parsePageCounters reads graft_edge_pages_total{source="..."} from a
// Prometheus text exposition.
func parsePageCounters(r io.Reader) (pageCounters, error) {
	const prefix = `graft_edge_pages_total{source="`
	out := pageCounters{}
	pages := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// The cache's size, for the prefill: keys cache_bytes, cache_max_bytes.
		for _, g := range []string{"graft_edge_cache_bytes", "graft_edge_cache_max_bytes"} {
			if val, ok := strings.CutPrefix(sc.Text(), g+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[strings.TrimPrefix(g, "graft_edge_")] = int64(f)
				}
			}
		}
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		src, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			return nil, fmt.Errorf("parse metrics line %q: %w", sc.Text(), ErrInvalidArgument)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("parse metrics line %q: %w", sc.Text(), err)
		}
		out[src] = int64(f)
		pages++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	if pages == 0 {
		return nil, fmt.Errorf("no graft_edge_pages_total in metrics: %w", ErrInvalidArgument)
	}
	return out, nil
}

// summarizeEdge computes the report's phases and totals from what the
// phases measured (samples are sorted in place).
func summarizeEdge(rep *EdgeReport, phases []edgeSample) {
	var all [2][]time.Duration
	var secs [2]float64
	var served, origin, warmServed, warmOrigin int64
	for _, ph := range phases {
		side := 0
		if ph.target == EdgeTargetDirect {
			side = 1
		}
		all[side] = append(all[side], ph.samples...)
		secs[side] += ph.elapsed.Seconds()
		p := EdgePhase{Round: ph.round, Target: ph.target, CellResult: cellFromSamples(ph.clients, ph.samples, ph.elapsed)}
		p.Pages = ph.pages
		p.CDF = nil
		p.PagesPerSec = p.OpsPerSec * float64(ph.pages)
		if side == 0 && ph.counters[0] != nil && ph.counters[1] != nil {
			p.ServedPages = ph.counters[1].served() - ph.counters[0].served()
			p.OriginPages = ph.counters[1].origin() - ph.counters[0].origin()
			p.Offload = offload(p.ServedPages, p.OriginPages)
			served += p.ServedPages
			origin += p.OriginPages
			if ph.round >= 2 || rep.Settings.PrefillReads > 0 {
				warmServed += p.ServedPages
				warmOrigin += p.OriginPages
			}
		}
		rep.Phases = append(rep.Phases, p)
	}
	sides := [2]*EdgeSide{&rep.Edge, &rep.Direct}
	for i, s := range sides {
		sum := Summarize(all[i], 0)
		s.Reads, s.Seconds = sum.Count, secs[i]
		s.P50MS, s.P99MS = Millis(sum.P50), Millis(sum.P99)
		if secs[i] > 0 {
			s.PagesPerSec = float64(sum.Count*rep.Settings.ReadPages) / secs[i]
		}
	}
	rep.Offload = offload(served, origin)
	if warmServed == 0 {
		warmServed, warmOrigin = served, origin
	}
	rep.WarmOffload = offload(warmServed, warmOrigin)
	if rep.Direct.P50MS > 0 {
		rep.P50Ratio = rep.Edge.P50MS / rep.Direct.P50MS
	}
	if rep.Direct.PagesPerSec > 0 {
		rep.PagesPerSecX = rep.Edge.PagesPerSec / rep.Direct.PagesPerSec
	}
	if rep.Settings.CacheBytes > 0 {
		rep.HWMOverCache = float64(rep.EdgeHWMKiB*1024) / float64(rep.Settings.CacheBytes)
	}
	rep.GoalOffload = warmServed > 0 && rep.WarmOffload >= 0.95
	rep.GoalP50 = rep.Direct.P50MS > 0 && rep.P50Ratio <= 0.5
	rep.GoalPagesPerS = rep.PagesPerSecX >= 3
}

func offload(served, origin int64) float64 {
	if served <= 0 {
		return 0
	}
	return 1 - float64(origin)/float64(served)
}

// Text renders the report for people.
func (rep *EdgeReport) Text() string {
	var b strings.Builder
	s := rep.Settings
	fmt.Fprintf(&b, "edge bench: %d clients, ReadPages of %d consecutive pages at %s, zipf %.2f over %d volumes x %d pages; %d round(s) of %gs edge + %gs direct (after %gs warm-up each); edge --cache-bytes %d MiB\n",
		s.Clients, s.ReadPages, s.Snapshot, s.Theta, s.Volumes, s.PagesPerVolume, s.Rounds, s.DurationS, s.DurationS, s.WarmupS, s.CacheBytes>>20)
	steady := "steady"
	if !rep.PrefillSteady {
		steady = "NOT steady: stopped at the limit"
	}
	chunks := make([]string, len(rep.PrefillChunks))
	for i, c := range rep.PrefillChunks {
		chunks[i] = fmt.Sprintf("%.1f", 100*c)
	}
	fmt.Fprintf(&b, "load average %s at start, %s at end (%d CPUs); loading the data took %.1fs; %d unmeasured prefill reads through the edge took %.1fs (offload %.1f%% from a cold cache; by chunk %s%%; %s)\n",
		rep.LoadAvgStart, rep.LoadAvgEnd, rep.NumCPU, rep.LoadSeconds, rep.PrefillDone, rep.PrefillSeconds, 100*rep.PrefillOffload, strings.Join(chunks, " "), steady)
	fmt.Fprintf(&b, "the edge's page cache holds %d of the %d pages; the best offload any cache of that size could reach on this read stream is %.2f%%\n\n",
		rep.CapacityPages, s.Volumes*s.PagesPerVolume, 100*rep.OptimalOffload)
	fmt.Fprintf(&b, "| round | target | reads | p50 ms | p99 ms | pages/s | offload |\n|---|---|---|---|---|---|---|\n")
	for _, p := range rep.Phases {
		off := "-"
		if p.Target == EdgeTargetEdge {
			off = fmt.Sprintf("%.1f%% (%d of %d pages from origin)", 100*p.Offload, p.OriginPages, p.ServedPages)
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %.3f | %.3f | %.0f | %s |\n", p.Round, p.Target, p.Commits, p.P50MS, p.P99MS, p.PagesPerSec, off)
	}
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(&b, "\nall rounds: edge p50 %.3f ms p99 %.3f ms %.0f pages/s; direct p50 %.3f ms p99 %.3f ms %.0f pages/s\n",
		rep.Edge.P50MS, rep.Edge.P99MS, rep.Edge.PagesPerSec, rep.Direct.P50MS, rep.Direct.P99MS, rep.Direct.PagesPerSec)
	fmt.Fprintf(&b, "origin offload %.2f%% over all edge windows, %.2f%% warm (after the prefill or round 1; goal >= 95%%: %s)\n", 100*rep.Offload, 100*rep.WarmOffload, goal(rep.GoalOffload))
	fmt.Fprintf(&b, "edge p50 = %.2fx direct (goal <= 0.5x: %s)\n", rep.P50Ratio, goal(rep.GoalP50))
	fmt.Fprintf(&b, "edge pages/s = %.2fx direct (goal >= 3x: %s)\n", rep.PagesPerSecX, goal(rep.GoalPagesPerS))
	fmt.Fprintf(&b, "edge process peak RSS (VmHWM) %.1f MiB = %.2fx --cache-bytes (%d MiB); RSS at end %.1f MiB",
		float64(rep.EdgeHWMKiB)/1024, rep.HWMOverCache, s.CacheBytes>>20, float64(rep.EdgeRSSKiB)/1024)
	return b.String()
}

// edgeVolume is one loaded volume and the snapshot the readers read.
type edgeVolume struct {
	vid  volume.ID
	snap volume.Snapshot
}

// RunEdge runs the edge benchmark: `graft dev --edge-port -1` (three nodes
// and the embedded S3 server), the data set committed and flushed, one
// `graft edge` process in front of the nodes, then Rounds of an edge phase
// and a direct phase on the same cluster. Readers read at each volume's
// loaded snapshot (a fixed LSN, with at-least-LSN consistency: the lazy
// replica's read), worker w of the direct phase on node w%3.
func RunEdge(ctx context.Context, cfg EdgeConfig) (*EdgeReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create out dir: %w", err)
	}
	zipf, err := NewZipf(uint64(cfg.Volumes*cfg.PagesPerVolume), cfg.Theta)
	if err != nil {
		return nil, err
	}
	rep := &EdgeReport{NumCPU: runtime.NumCPU(), LoadAvgStart: loadAvg()}
	s := &rep.Settings
	s.Clients, s.Volumes, s.PagesPerVolume, s.ReadPages = cfg.Clients, cfg.Volumes, cfg.PagesPerVolume, cfg.ReadPages
	s.Theta, s.Seed, s.Rounds, s.CacheBytes, s.PrefillReads = cfg.Theta, cfg.Seed, cfg.Rounds, cfg.CacheBytes, cfg.PrefillReads
	s.DurationS, s.WarmupS = cfg.Duration.Seconds(), cfg.Warmup.Seconds()
	s.PrefillMax = max(cfg.PrefillReads, cfg.PrefillMaxReads)
	rep.CapacityPages = edge.PageCacheCapacity(cfg.CacheBytes)
	rep.OptimalOffload = optimalOffload(zipf, cfg.Volumes, cfg.PagesPerVolume, cfg.ReadPages, rep.CapacityPages)
	s.Snapshot = "each volume's loaded LSN (fixed), at-least-LSN consistency"

	base := cfg.PortBase
	if err := checkPortsFree(base, base+1, base+2, base+3, base+101, base+102, base+103, base+301); err != nil {
		return nil, err
	}
	r := &comparer{cfg: CompareConfig{StartTimeout: cfg.StartTimeout, StopGrace: cfg.StopGrace}, log: log}
	dev, err := startProc("graft dev", filepath.Join(cfg.OutDir, "dev.log"), cfg.GraftBin,
		"dev", "--dir", filepath.Join(cfg.WorkDir, "cluster"), "--port-base", strconv.Itoa(base), "--edge-port", "-1", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	defer r.stop(dev, os.Interrupt)
	eps := []string{"http://" + hostPort(base+1), "http://" + hostPort(base+2), "http://" + hostPort(base+3)}
	for _, ep := range eps {
		if err := r.waitHTTP(ctx, dev, ep+"/readyz", nil); err != nil {
			return nil, err
		}
	}
	hc := client.DefaultHTTPClient()
	defer hc.CloseIdleConnections()
	cluster, err := client.New(eps, client.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	log.Info("loading", "volumes", cfg.Volumes, "pages", cfg.Volumes*cfg.PagesPerVolume)
	t0 := time.Now()
	vols, err := loadEdgeVolumes(ctx, cluster, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := cluster.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush the loaded data: %w", err)
	}
	rep.LoadSeconds = time.Since(t0).Seconds()
	log.Info("loaded and flushed", "seconds", round3(rep.LoadSeconds))

	edgeURL := "http://" + hostPort(base)
	edgeProc, err := startProc("graft edge", filepath.Join(cfg.OutDir, "edge.log"), cfg.GraftBin,
		"edge", "--listen", hostPort(base), "--upstream", strings.Join(eps, ","),
		"--cache-bytes", strconv.FormatInt(cfg.CacheBytes, 10), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	defer r.stop(edgeProc, os.Interrupt)
	if err := r.waitHTTP(ctx, edgeProc, edgeURL+"/readyz", nil); err != nil {
		return nil, err
	}
	edgeCl, err := client.New([]string{edgeURL}, client.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	direct := make([]*client.Client, len(eps))
	for i, ep := range eps {
		if direct[i], err = client.New([]string{ep}, client.WithHTTPClient(hc)); err != nil {
			return nil, err
		}
	}

	if cfg.PrefillReads > 0 {
		if err := prefillSteady(ctx, edgeCl, edgeURL, vols, zipf, cfg, rep, log); err != nil {
			return nil, err
		}
	}

	var phases []edgeSample
	for round := 1; round <= cfg.Rounds; round++ {
		for _, target := range []string{EdgeTargetEdge, EdgeTargetDirect} {
			pick := func(w int) *client.Client { return edgeCl }
			if target == EdgeTargetDirect {
				pick = func(w int) *client.Client { return direct[w%len(direct)] }
			}
			ph := edgeSample{round: round, target: target, clients: cfg.Clients, pages: cfg.ReadPages}
			var scrapeErr error
			var wg sync.WaitGroup
			if target == EdgeTargetEdge {
				// The counters at the end of the warm-up, scraped while the
				// readers run.
				wg.Go(func() {
					if err := sleepCtx(ctx, cfg.Warmup); err != nil {
						scrapeErr = err
						return
					}
					ph.counters[0], scrapeErr = scrapePageCounters(ctx, edgeURL)
				})
			}
			// Both phases of a round read the same page stream (a fair
			// comparison); each round a fresh one. (Replaying round 1's
			// stream in round 2 let the cache serve the very pages round 1
			// had just fetched: 96.5% and 97.1% offload in round 2, above
			// what any cache of that size can reach on a fresh stream.)
			rcfg := cfg
			rcfg.Seed = cfg.Seed + uint64(round-1)*0x9e3779b97f4a7c15
			ph.samples, ph.elapsed, err = runClosedLoop(ctx, cfg.Clients, cfg.Warmup, cfg.Duration, readOp(pick, vols, zipf, rcfg))
			wg.Wait()
			if err != nil {
				return nil, fmt.Errorf("round %d %s phase: %w", round, target, err)
			}
			if target == EdgeTargetEdge {
				if scrapeErr != nil {
					return nil, scrapeErr
				}
				if ph.counters[1], err = scrapePageCounters(ctx, edgeURL); err != nil {
					return nil, err
				}
			}
			log.Info("phase", "round", round, "target", target, "reads", len(ph.samples))
			phases = append(phases, ph)
		}
	}
	if m, err := readProcMem("graft edge", edgeProc.pid()); err == nil {
		rep.EdgeHWMKiB, rep.EdgeRSSKiB = m.HWMKiB, m.RSSKiB
	} else {
		log.Warn("edge memory", "err", err)
	}
	rep.LoadAvgEnd = loadAvg()
	summarizeEdge(rep, phases)
	return rep, nil
}

// prefillSteady prefills the edge: PrefillReads reads, then chunks of
// PrefillChunk until the cache is steady (EdgeConfig.PrefillMaxReads).
func prefillSteady(ctx context.Context, edgeCl *client.Client, edgeURL string, vols []edgeVolume, zipf *Zipf, cfg EdgeConfig, rep *EdgeReport, log *slog.Logger) error {
	first, err := scrapePageCounters(ctx, edgeURL)
	if err != nil {
		return err
	}
	t0 := time.Now()
	prev := first
	prevOff := -1.0
	for chunk := 0; ; chunk++ {
		n := cfg.PrefillReads
		if chunk > 0 {
			n = cfg.PrefillChunk
		}
		if err := prefill(ctx, edgeCl, vols, zipf, cfg, n, uint64(chunk)); err != nil {
			return err
		}
		rep.PrefillDone += n
		now, err := scrapePageCounters(ctx, edgeURL)
		if err != nil {
			return err
		}
		off := offload(now.served()-prev.served(), now.origin()-prev.origin())
		rep.PrefillChunks = append(rep.PrefillChunks, off)
		full := now["cache_max_bytes"] > 0 && float64(now["cache_bytes"]) >= 0.85*float64(now["cache_max_bytes"])
		log.Info("prefill", "reads", rep.PrefillDone, "chunk_offload", round3(off), "cache_full", full)
		if rep.PrefillDone >= cfg.PrefillMaxReads {
			rep.PrefillSteady = cfg.PrefillMaxReads <= cfg.PrefillReads // a fixed count asked for
			break
		}
		if full && prevOff >= 0 && math.Abs(off-prevOff) <= cfg.PrefillSteady {
			rep.PrefillSteady = true
			break
		}
		prev, prevOff = now, off
		if !full {
			prevOff = -1 // not steady before the cache is full
		}
	}
	rep.PrefillSeconds = time.Since(t0).Seconds()
	last, err := scrapePageCounters(ctx, edgeURL)
	if err != nil {
		return err
	}
	rep.PrefillOffload = offload(last.served()-first.served(), last.origin()-first.origin())
	log.Info("prefilled the edge", "reads", rep.PrefillDone, "seconds", round3(rep.PrefillSeconds), "offload", round3(rep.PrefillOffload), "steady", rep.PrefillSteady)
	return nil
}

// optimalOffload is the offload of a cache of capPages pages that holds
// the pages the read stream reads most: the sum of their shares of all
// page reads. No cache of that size does better on average.
func optimalOffload(z *Zipf, vols, perVol, readPages, capPages int) float64 {
	n := vols * perVol
	share := make([]float64, n)
	for k := range uint64(n) {
		p := z.Prob(k) / float64(readPages)
		v, first := int(k%uint64(vols)), int(k/uint64(vols))
		for j := range readPages {
			share[v*perVol+(first+j)%perVol] += p
		}
	}
	slices.Sort(share)
	sum := 0.0
	for i := max(0, n-capPages); i < n; i++ {
		sum += share[i]
	}
	return sum
}

// prefill makes n reads through the edge from Clients workers, with other
// seeds than the measured phases' (and than the other chunks').
func prefill(ctx context.Context, edgeCl *client.Client, vols []edgeVolume, zipf *Zipf, cfg EdgeConfig, n int, chunk uint64) error {
	pcfg := cfg
	pcfg.Seed = cfg.Seed ^ 0x9e3779b97f4a7c15 ^ (chunk * 0x100000001b3)
	op := readOp(func(int) *client.Client { return edgeCl }, vols, zipf, pcfg)
	errs := make([]error, cfg.Clients)
	var wg sync.WaitGroup
	total := n
	for w := range cfg.Clients {
		n := total / cfg.Clients
		if w < total%cfg.Clients {
			n++
		}
		wg.Go(func() {
			for i := range n {
				if err := op(ctx, w, uint64(i)); err != nil {
					errs[w] = fmt.Errorf("prefill: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loadEdgeVolumes commits every volume's pages in batches of BatchPages,
// LoadParallel volumes at a time, and returns each volume's last snapshot.
// On a busy machine big commits can cost the cluster its leader for a
// while: a commit that fails as unavailable is retried with the same
// content for up to StartTimeout (the cluster deduplicates it; a conflict
// whose head is past the base is that same commit, the volume having no
// other writer).
func loadEdgeVolumes(ctx context.Context, cl *client.Client, cfg EdgeConfig, log *slog.Logger) ([]edgeVolume, error) {
	vols := make([]edgeVolume, cfg.Volumes)
	errs := make([]error, cfg.Volumes)
	sem := make(chan struct{}, cfg.LoadParallel)
	var wg sync.WaitGroup
	for v := range vols {
		vols[v].vid = volume.MustNewID()
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rng := rand.NewChaCha8([32]byte{byte(v), byte(v >> 8)})
			var base volume.LSN
			for first := 1; first <= cfg.PagesPerVolume; first += cfg.BatchPages {
				n := min(cfg.BatchPages, cfg.PagesPerVolume-first+1)
				data := make([]byte, n*volume.PageSize)
				_, _ = rng.Read(data) // never fails
				pages := make([]volume.PageWrite, n)
				for j := range pages {
					pages[j] = volume.PageWrite{Idx: volume.PageIdx(first + j), Data: data[j*volume.PageSize : (j+1)*volume.PageSize]}
				}
				snap, err := commitRetrying(ctx, cl, vols[v].vid, base, uint32(cfg.PagesPerVolume), pages, cfg.StartTimeout, log)
				if err != nil {
					errs[v] = fmt.Errorf("load volume %d pages %d..%d: %w", v, first, first+n-1, err)
					return
				}
				base, vols[v].snap = snap.LSN, snap
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return vols, nil
}

// commitRetrying commits pages on base, retrying unavailable outcomes with
// the same content for up to budget.
func commitRetrying(ctx context.Context, cl *client.Client, vid volume.ID, base volume.LSN, pageCount uint32, pages []volume.PageWrite, budget time.Duration, log *slog.Logger) (volume.Snapshot, error) {
	deadline := time.Now().Add(budget)
	for {
		snap, err := cl.Commit(ctx, vid, base, pageCount, pages)
		var ce *client.ConflictError
		switch {
		case err == nil:
			return snap, nil
		case errors.As(err, &ce) && ce.Head.LSN == base+1:
			return ce.Head, nil // an earlier try committed
		case ctx.Err() != nil || time.Now().After(deadline) || !retryableLoad(err):
			return volume.Snapshot{}, err
		}
		log.Warn("load commit failed; retrying", "vid", vid, "base", base, "err", err)
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return volume.Snapshot{}, err
		}
	}
}

// retryableLoad reports whether a load commit may be tried again.
func retryableLoad(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted, connect.CodeUnknown, connect.CodeCanceled:
		return true
	}
	return false
}

// readOp returns the closed-loop read: worker w draws item k from zipf with
// its own generator and reads ReadPages consecutive pages of volume
// k % Volumes from page k / Volumes + 1 (wrapping at the volume's end), at
// the volume's loaded snapshot. Item k -> volume k % Volumes spreads the
// hottest items over the volumes.
func readOp(pick func(w int) *client.Client, vols []edgeVolume, zipf *Zipf, cfg EdgeConfig) opFunc {
	rngs := make([]*rand.Rand, cfg.Clients)
	idxs := make([][]volume.PageIdx, cfg.Clients)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
		idxs[w] = make([]volume.PageIdx, cfg.ReadPages)
	}
	return func(ctx context.Context, w int, _ uint64) error {
		k := zipf.Next(rngs[w])
		v := &vols[k%uint64(len(vols))]
		first := int(k / uint64(len(vols)))
		for j := range idxs[w] {
			idxs[w][j] = volume.PageIdx((first+j)%cfg.PagesPerVolume + 1)
		}
		_, pages, err := pick(w).ReadPages(ctx, v.vid, v.snap.LSN, idxs[w], client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: v.snap.LSN})
		if err != nil {
			return fmt.Errorf("read %s@%d pages %v: %w", v.vid, v.snap.LSN, idxs[w], err)
		}
		if len(pages) != len(idxs[w]) {
			return fmt.Errorf("read %s@%d: %d pages, asked %d", v.vid, v.snap.LSN, len(pages), len(idxs[w]))
		}
		return nil
	}
}

// scrapePageCounters fetches the edge's /metrics page counters.
func scrapePageCounters(ctx context.Context, edgeURL string) (pageCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, edgeURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape edge metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape edge metrics: %s", resp.Status)
	}
	return parsePageCounters(resp.Body)
}

// WriteEdgeReport writes rep into dir as results.json and results.txt.
func WriteEdgeReport(dir string, rep *EdgeReport) error {
	if err := writeJSONFile(filepath.Join(dir, "results.json"), rep); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.txt"), []byte(rep.Text()+"\n"), 0o644); err != nil {
		return fmt.Errorf("write results.txt: %w", err)
	}
	return nil
}
