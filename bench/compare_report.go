package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// RatioRow holds one workload's ratios of graft to the other targets; a
// ratio is nil when either cell is missing or failed.
type RatioRow struct {
	Workload Workload `json:"workload"`
	// GraftEtcdP50 is graft p50 / etcd p50, GraftEtcdP99 the same at p99.
	GraftEtcdP50 *float64 `json:"graft_etcd_p50,omitempty"`
	GraftEtcdP99 *float64 `json:"graft_etcd_p99,omitempty"`
	// GraftFsyncP50 is graft p50 / the disk target's p50 (same payload).
	GraftFsyncP50 *float64 `json:"graft_fsync_p50,omitempty"`
	// GraftEtcdOps and GraftRaftOps are graft's ops/s over etcd's and
	// bare Raft's.
	GraftEtcdOps *float64 `json:"graft_etcd_ops,omitempty"`
	GraftRaftOps *float64 `json:"graft_raft_ops,omitempty"`
	// GraftS3P50 is p50 with the added S3 latency / p50 without.
	GraftS3P50 *float64 `json:"graft_s3_p50,omitempty"`
	// AltStore is the log store that is not the default; GraftAltP50 and
	// GraftAltOps are graft on it over graft on the default store, and
	// RaftAltOps the same for bare Raft: below 1 (p50) and above 1 (ops)
	// say the default is the wrong choice.
	AltStore    string   `json:"alt_store,omitempty"`
	GraftAltP50 *float64 `json:"graft_alt_p50,omitempty"`
	GraftAltOps *float64 `json:"graft_alt_ops,omitempty"`
	RaftAltOps  *float64 `json:"raft_alt_ops,omitempty"`
}

// Goal is one of issue 5's targets, checked against a run.
type Goal struct {
	Name  string   `json:"name"`
	Value *float64 `json:"value"` // nil when a cell it needs is missing or failed
	Op    string   `json:"op"`    // "<=" or ">="
	Limit float64  `json:"limit"`
	Unit  string   `json:"unit"` // "x" (a ratio), "MiB"
	Met   *bool    `json:"met"`  // nil when Value is
}

// findCell returns the cell of target under w, or nil.
func findCell(cells []CellResult, target string, w Workload) *CellResult {
	for i := range cells {
		c := &cells[i]
		if c.Target == target && c.Clients == w.Clients && c.Pages == w.Pages && c.Rate == w.Rate {
			return c
		}
	}
	return nil
}

// ratio returns a/b when both cells have numbers and b is not 0.
func ratio(a, b *CellResult, f func(*CellResult) float64) *float64 {
	if !a.ok() || !b.ok() || f(b) == 0 {
		return nil
	}
	v := f(a) / f(b)
	return &v
}

func p50(c *CellResult) float64 { return c.P50MS }
func p99(c *CellResult) float64 { return c.P99MS }
func ops(c *CellResult) float64 { return c.OpsPerSec }

// ratios computes a RatioRow per workload.
func ratios(cells []CellResult, workloads []Workload) []RatioRow {
	var out []RatioRow
	for _, w := range workloads {
		g := findCell(cells, TargetGraft, w)
		e, d, r, s := findCell(cells, TargetEtcd, w), findCell(cells, TargetDisk, w), findCell(cells, TargetRaft, w), findCell(cells, TargetGraftS3, w)
		ga, ra := findCell(cells, "graft-"+AltLogStore, w), findCell(cells, "raft-"+AltLogStore, w)
		out = append(out, RatioRow{
			Workload:      w,
			GraftEtcdP50:  ratio(g, e, p50),
			GraftEtcdP99:  ratio(g, e, p99),
			GraftFsyncP50: ratio(g, d, p50),
			GraftEtcdOps:  ratio(g, e, ops),
			GraftRaftOps:  ratio(g, r, ops),
			GraftS3P50:    ratio(s, g, p50),
			AltStore:      AltLogStore,
			GraftAltP50:   ratio(ga, g, p50),
			GraftAltOps:   ratio(ga, g, ops),
			RaftAltOps:    ratio(ra, r, ops),
		})
	}
	return out
}

// goals checks issue 5's goals. Those stated for "64 clients" are checked
// in every 64-client workload present (1 and 16 pages by default).
func goals(cells []CellResult) []Goal {
	var out []Goal
	add := func(name string, v *float64, op string, limit float64, unit string) {
		g := Goal{Name: name, Value: v, Op: op, Limit: limit, Unit: unit}
		if v != nil {
			met := *v <= limit
			if op == ">=" {
				met = *v >= limit
			}
			g.Met = &met
		}
		out = append(out, g)
	}
	one := Workload{Clients: 1, Pages: 1}
	g, e, d := findCell(cells, TargetGraft, one), findCell(cells, TargetEtcd, one), findCell(cells, TargetDisk, one)
	add("1 client, 1 page: graft p50 <= 0.5x etcd p50", ratio(g, e, p50), "<=", 0.5, "x")
	add("1 client, 1 page: graft p50 <= 3x fdatasync p50", ratio(g, d, p50), "<=", 3, "x")
	add("1 client, 1 page: graft p99 <= etcd p99", ratio(g, e, p99), "<=", 1, "x")
	var many []Workload
	for _, c := range cells {
		w := Workload{Clients: c.Clients, Pages: c.Pages, Rate: c.Rate}
		if c.Target == TargetGraft && c.Clients == 64 && c.Rate == 0 {
			many = append(many, w)
		}
	}
	for _, w := range many {
		g, e, r := findCell(cells, TargetGraft, w), findCell(cells, TargetEtcd, w), findCell(cells, TargetRaft, w)
		label := fmt.Sprintf("64 clients, %d page(s): ", w.Pages)
		add(label+"graft ops >= 4x etcd ops", ratio(g, e, ops), ">=", 4, "x")
		add(label+"graft p99 <= etcd p99", ratio(g, e, p99), "<=", 1, "x")
		add(label+"graft ops >= 90% of bare raft ops", ratio(g, r, ops), ">=", 0.9, "x")
	}
	for _, c := range cells {
		if c.Target != TargetGraftS3 {
			continue
		}
		w := Workload{Clients: c.Clients, Pages: c.Pages, Rate: c.Rate}
		var v *float64
		if r := ratio(&c, findCell(cells, TargetGraft, w), p50); r != nil {
			change := math.Abs(*r - 1)
			v = &change
		}
		add(fmt.Sprintf("%d client(s), %d page(s): S3 latency changes graft p50 by <= 10%%", w.Clients, w.Pages), v, "<=", 0.10, "x")
	}
	many1 := Workload{Clients: 64, Pages: 1}
	add("64 clients, 1 page, spread over the 3 nodes: ops >= 80% of all on the leader",
		ratio(findCell(cells, TargetGraftSpread, many1), findCell(cells, TargetGraft, many1), ops), ">=", 0.8, "x")
	for _, c := range cells {
		if c.Target != TargetGraftSecure {
			continue
		}
		w := Workload{Clients: c.Clients, Pages: c.Pages, Rate: c.Rate}
		var v *float64
		if r := ratio(&c, findCell(cells, TargetGraft, w), p50); r != nil {
			change := *r - 1
			v = &change
		}
		if w.Clients == 1 {
			add(fmt.Sprintf("1 client, %d page(s): TLS + tokens add <= 10%% to graft p50", w.Pages), v, "<=", 0.10, "x")
		}
	}
	var peak *float64
	for _, c := range cells {
		if !graftTarget(c.Target) {
			continue
		}
		if h := nodePeakMiB(&c); h != nil && (peak == nil || *h > *peak) {
			peak = h
		}
	}
	add("every graft cell: peak RSS (VmHWM) per graft node <= 256 MiB", peak, "<=", 256, "MiB")
	return out
}

// nodePeakMiB is the largest VmHWM among c's server processes in MiB,
// leaving out graft dev's supervisor (which also runs the embedded S3
// server, not a cluster member). nil when none was read.
func nodePeakMiB(c *CellResult) *float64 {
	var peak *float64
	for _, p := range c.Procs {
		if strings.HasPrefix(p.Name, "graft dev") {
			continue
		}
		v := float64(p.HWMKiB) / 1024
		if peak == nil || v > *peak {
			peak = &v
		}
	}
	return peak
}

// targetLabel names a target for humans.
func targetLabel(t string, s Settings, m Machine) string {
	switch t {
	case TargetGraftS3:
		return fmt.Sprintf("graft + %gms S3 latency", s.S3LatencyMS)
	case TargetGraftSecure:
		return "graft + TLS (HTTPS, mutual TLS between nodes) + tokens"
	case TargetEtcd:
		if m.EtcdVersion != "" {
			return "etcd " + m.EtcdVersion
		}
		return "etcd"
	case TargetGraft:
		return "graft (" + DefaultLogStore + " log store)"
	case TargetGraftBolt, TargetGraftWAL:
		return "graft, " + targetLogStore(t) + " log store"
	case TargetGraftNoBatch:
		return "graft, commit batching off"
	case TargetGraftSpread:
		return "graft, clients spread over the 3 nodes"
	case TargetRaft:
		return "bare hashicorp/raft (no-op FSM, " + DefaultLogStore + " log store)"
	case TargetRaftBolt, TargetRaftWAL:
		return "bare hashicorp/raft, " + targetLogStore(t) + " log store"
	case TargetDisk:
		return "disk: append + fdatasync, 1 writer"
	}
	return t
}

// Markdown renders the report as results.md: the table, the ratios and the
// goals.
func (rep *CompareReport) Markdown() string {
	var b bytes.Buffer
	m, s := rep.Machine, rep.Settings
	fmt.Fprintf(&b, "# graft bench compare, %s\n\n", rep.Started.Format("2006-01-02 15:04 UTC"))
	if rep.Label != "" {
		fmt.Fprintf(&b, "%s\n\n", rep.Label)
	}
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), Linux %s, %s. Load average (1/5/15 min) %s at start, %s at end.\n",
		m.NumCPU, or(m.CPUModel, "unknown CPU"), or(m.Kernel, "?"), m.GoVersion, or(m.LoadAvgStart, "?"), or(m.LoadAvgEnd, "?"))
	if m.FsyncP50MS > 0 {
		fmt.Fprintf(&b, "Disk floor: append + fdatasync of 4160 B, p50 %.3f ms.\n", m.FsyncP50MS)
	}
	fmt.Fprintf(&b, "\nEach cell: a fresh three-node cluster of real processes on loopback, data on the same disk; %gs warm-up, then %gs measured, closed loop (each client waits for its ack) unless marked open loop (commits offered at a fixed rate, latency from when each was due). Targets interleaved within each workload. Latencies in ms.\n\n",
		s.WarmupSec, s.DurationSec)

	b.WriteString("| clients | pages | target | p50 | p90 | p99 | max | ops/s | errors | peak RSS/node MiB | node CPU ms/commit |\n")
	b.WriteString("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range rep.Cells {
		label := targetLabel(c.Target, s, m)
		if c.Error != "" {
			fmt.Fprintf(&b, "| %s | %d | %s | failed: %s | | | | | | | |\n", clientsLabel(c.Clients, c.Rate), c.Pages, label, mdEscape(firstLine(c.Error)))
			continue
		}
		rss := ""
		if p := nodePeakMiB(&c); p != nil {
			rss = fmt.Sprintf("%.0f", *p)
		}
		cpu := ""
		if c.NodeCPUMSPerCommit > 0 {
			cpu = fmt.Sprintf("%.3f", c.NodeCPUMSPerCommit)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.2f | %.2f | %.2f | %.2f | %.0f | %d | %s | %s |\n",
			clientsLabel(c.Clients, c.Rate), c.Pages, label, c.P50MS, c.P90MS, c.P99MS, c.MaxMS, c.OpsPerSec, c.Errors, rss, cpu)
	}

	b.WriteString("\n## Ratios\n\n")
	fmt.Fprintf(&b, "| clients | pages | graft p50 / etcd p50 | graft p50 / fsync p50 | graft p99 / etcd p99 | graft ops / etcd ops | graft ops / bare raft ops | graft+S3 p50 / graft p50 | %[1]s / %[2]s p50 (graft) | %[1]s / %[2]s ops (graft) | %[1]s / %[2]s ops (bare raft) |\n", AltLogStore, DefaultLogStore)
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Ratios {
		if r.Workload.Rate > 0 {
			continue // only graft runs open-loop workloads
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Workload.Clients, r.Workload.Pages,
			fmtRatio(r.GraftEtcdP50), fmtRatio(r.GraftFsyncP50), fmtRatio(r.GraftEtcdP99),
			fmtRatio(r.GraftEtcdOps), fmtRatio(r.GraftRaftOps), fmtRatio(r.GraftS3P50),
			fmtRatio(r.GraftAltP50), fmtRatio(r.GraftAltOps), fmtRatio(r.RaftAltOps))
	}

	b.WriteString("\n## Goals (issue 5)\n\n| goal | measured | target | met |\n|---|---:|---:|---|\n")
	for _, g := range rep.Goals {
		val, met := "n/a", "n/a"
		if g.Value != nil {
			val = fmtGoal(*g.Value, g)
		}
		if g.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*g.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s |\n", g.Name, val, g.Op, fmtGoal(g.Limit, g), met)
	}
	if line := peakRSSLine(rep.Cells); line != "" {
		b.WriteString("\n" + line + "\n")
	}
	return b.String()
}

// peakRSSLine names the graft cell and node with the highest VmHWM and
// splits that node's resident set at the end of the cell into anonymous
// and file-backed memory, so a peak made of a log store's mmap (bolt) is
// told apart from heap growth. Empty when no graft node was measured.
func peakRSSLine(cells []CellResult) string {
	var best *ProcMem
	var cell CellResult
	for _, c := range cells {
		if !graftTarget(c.Target) {
			continue
		}
		for i := range c.Procs {
			p := &c.Procs[i]
			if strings.HasPrefix(p.Name, "graft dev") {
				continue
			}
			if best == nil || p.HWMKiB > best.HWMKiB {
				best, cell = p, c
			}
		}
	}
	if best == nil {
		return ""
	}
	return fmt.Sprintf("Peak RSS: %s, %s x %d pages, %s: VmHWM %.0f MiB; at the end of the cell RSS %.0f MiB = %.0f MiB anonymous + %.0f MiB file-backed (mapped files, e.g. the bolt log store's mmap).",
		cell.Target, clientsLabel(cell.Clients, cell.Rate), cell.Pages, best.Name,
		float64(best.HWMKiB)/1024, float64(best.RSSKiB)/1024, float64(best.AnonKiB)/1024, float64(best.FileKiB)/1024)
}

// clientsLabel is the clients column: "1000 @ 2000/s" for an open loop.
func clientsLabel(clients, rate int) string {
	if rate > 0 {
		return fmt.Sprintf("%d @ %d/s (open loop)", clients, rate)
	}
	return fmt.Sprint(clients)
}

func fmtGoal(v float64, g Goal) string {
	switch {
	case g.Unit == "MiB":
		return fmt.Sprintf("%.0f MiB", v)
	case strings.Contains(g.Name, "%"):
		return fmt.Sprintf("%.1f%%", v*100)
	}
	return fmt.Sprintf("%.2fx", v)
}

func fmtRatio(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", *v)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 160 {
		line = line[:160] + "..."
	}
	return line
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// writeReport writes results.json, results.md and latency.svg into dir.
func writeReport(dir string, rep *CompareReport) error {
	if err := writeJSONFile(filepath.Join(dir, "results.json"), rep); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return fmt.Errorf("write results.md: %w", err)
	}
	var svg bytes.Buffer
	writeLatencySVG(&svg, rep)
	if err := os.WriteFile(filepath.Join(dir, "latency.svg"), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write latency.svg: %w", err)
	}
	return nil
}
