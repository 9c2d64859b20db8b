package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// Plot geometry of latency.svg, in SVG user units.
const (
	svgPanelW, svgPanelH   = 540, 330
	svgMarginL, svgMarginR = 58, 16
	svgMarginT, svgMarginB = 34, 44
	svgLegendH             = 40
	svgCols                = 2
)

// targetStyle is each target's line colour and dash pattern.
var targetStyle = map[string][2]string{
	TargetGraft:       {"#1f77b4", ""},
	TargetGraftS3:     {"#17becf", "6 3"},
	TargetGraftSecure: {"#ff7f0e", "3 2"},
	TargetEtcd:        {"#d62728", ""},
	TargetRaft:        {"#2ca02c", ""},
	TargetGraftBolt:   {"#9467bd", "4 2"},
	TargetGraftWAL:    {"#9467bd", "4 2"},
	TargetRaftBolt:    {"#8c564b", "4 2"},
	TargetRaftWAL:     {"#8c564b", "4 2"},
	TargetDisk:        {"#555555", "2 3"},
}

// writeLatencySVG draws one panel per workload with each target's latency
// CDF (x: latency, log scale, the same range in every panel; y: percentile),
// hand-written SVG without dependencies.
func writeLatencySVG(w io.Writer, rep *CompareReport) {
	workloads := rep.Settings.Workloads
	rows := max((len(workloads)+svgCols-1)/svgCols, 1)
	width, height := svgCols*svgPanelW, svgLegendH+rows*svgPanelH
	lo, hi := svgRange(rep.Cells)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	// Legend: every target that ran, in run order.
	x := 12.0
	fmt.Fprintf(&b, `<text x="%g" y="16" font-size="13" font-weight="bold">Commit latency CDF per workload (%gs measured per cell, %s)</text>`+"\n",
		x, rep.Settings.DurationSec, html.EscapeString(rep.Started.Format("2006-01-02 15:04 UTC")))
	for _, t := range rep.Settings.Targets {
		st := targetStyle[t]
		fmt.Fprintf(&b, `<line x1="%g" y1="30" x2="%g" y2="30" stroke="%s" stroke-width="2.5"%s/>`, x, x+22, st[0], dashAttr(st[1]))
		label := targetLabel(t, rep.Settings, rep.Machine)
		fmt.Fprintf(&b, `<text x="%g" y="34">%s</text>`+"\n", x+27, html.EscapeString(label))
		x += 27 + 6.2*float64(len(label)) + 18
	}
	for i, wl := range workloads {
		ox := float64((i % svgCols) * svgPanelW)
		oy := float64(svgLegendH + (i/svgCols)*svgPanelH)
		writePanel(&b, rep, wl, ox, oy, lo, hi)
	}
	b.WriteString("</svg>\n")
	_, _ = io.WriteString(w, b.String())
}

// svgRange returns the x range, in log10(ms), covering every CDF: whole
// decades around the smallest and largest sample.
func svgRange(cells []CellResult) (lo, hi float64) {
	minMS, maxMS := math.Inf(1), math.Inf(-1)
	for _, c := range cells {
		for _, pt := range c.CDF {
			if pt[1] > 0 {
				minMS, maxMS = min(minMS, pt[1]), max(maxMS, pt[1])
			}
		}
	}
	if math.IsInf(minMS, 1) {
		return -1, 3 // 0.1 ms .. 1 s when there is nothing to plot
	}
	lo, hi = math.Floor(math.Log10(minMS)), math.Ceil(math.Log10(maxMS))
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// writePanel draws one workload's panel with its top-left corner at ox, oy.
func writePanel(b *strings.Builder, rep *CompareReport, wl Workload, ox, oy, lo, hi float64) {
	pw := float64(svgPanelW - svgMarginL - svgMarginR)
	ph := float64(svgPanelH - svgMarginT - svgMarginB)
	x0, y0 := ox+svgMarginL, oy+svgMarginT
	px := func(ms float64) float64 { return x0 + (math.Log10(ms)-lo)/(hi-lo)*pw }
	py := func(p float64) float64 { return y0 + (1-p/100)*ph }
	clients := "clients"
	if wl.Clients == 1 {
		clients = "client"
	}
	pages := "pages"
	if wl.Pages == 1 {
		pages = "page"
	}
	open := ""
	if wl.Rate > 0 {
		open = fmt.Sprintf(", open loop at %d/s", wl.Rate)
	}
	fmt.Fprintf(b, `<text x="%g" y="%g" font-size="12" font-weight="bold">%d %s, %d %s (%d KiB) per commit%s</text>`+"\n",
		x0, oy+svgMarginT-10, wl.Clients, clients, wl.Pages, pages, wl.Pages*4, open)
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`+"\n", x0, y0, pw, ph)
	// x grid: decades labelled, 2x and 5x faint.
	for d := lo; d <= hi; d++ {
		for _, m := range []float64{1, 2, 5} {
			ms := m * math.Pow(10, d)
			if math.Log10(ms) > hi+1e-9 {
				break
			}
			x := px(ms)
			stroke := "#eee"
			if m == 1 {
				stroke = "#ccc"
				fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`, x, y0+ph+14, fmtMS(ms))
			}
			fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s"/>`+"\n", x, y0, x, y0+ph, stroke)
		}
	}
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle">latency, ms (log scale)</text>`+"\n", x0+pw/2, y0+ph+32)
	// y grid: percentiles.
	for _, p := range []float64{0, 25, 50, 75, 90, 99} { // p100 is the frame's top
		y := py(p)
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#eee"/><text x="%g" y="%g" text-anchor="end">p%g</text>`+"\n",
			x0, y, x0+pw, y, x0-4, y+4, p)
	}
	for _, t := range rep.Settings.Targets {
		c := findCell(rep.Cells, t, wl)
		if !c.ok() || len(c.CDF) == 0 {
			continue
		}
		st := targetStyle[t]
		pts := make([]string, 0, len(c.CDF))
		for _, pt := range c.CDF {
			if pt[1] <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(pt[1]), py(pt[0])))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s: p50 %.2f ms, p99 %.2f ms, %.0f ops/s</title></polyline>`+"\n",
			st[0], dashAttr(st[1]), strings.Join(pts, " "), html.EscapeString(targetLabel(t, rep.Settings, rep.Machine)), c.P50MS, c.P99MS, c.OpsPerSec)
	}
	// Failed cells are named in the panel, not silently missing.
	var failed []string
	for _, c := range rep.Cells {
		if c.Clients == wl.Clients && c.Pages == wl.Pages && c.Rate == wl.Rate && c.Error != "" {
			failed = append(failed, c.Target)
		}
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		fmt.Fprintf(b, `<text x="%g" y="%g" fill="#d62728">failed: %s</text>`+"\n", x0+6, y0+14, html.EscapeString(strings.Join(failed, ", ")))
	}
}

func dashAttr(d string) string {
	if d == "" {
		return ""
	}
	return fmt.Sprintf(` stroke-dasharray="%s"`, d)
}

// fmtMS formats a decade tick: 0.01, 0.1, 1, 10, 100, 1000.
func fmtMS(ms float64) string {
	if ms >= 1 {
		return fmt.Sprintf("%.0f", ms)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", ms), "0"), ".")
}
