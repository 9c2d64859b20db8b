package report

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/graft-cluster/graft/jepsen/history"
)

// Plot geometry, in SVG user units.
const (
	svgWidth    = 1100
	plotLeft    = 80
	plotRight   = 1080
	latTop      = 70
	latBottom   = 430
	tputTop     = 490
	tputBottom  = 650
	svgHeight   = 700
	maxPoints   = 20000
	minLatency  = 10 * time.Microsecond
	windowColor = "#888888"
)

// outcomeColor colors an operation by its completion type.
var outcomeColor = map[history.Type]string{
	history.OK:   "#2ca02c",
	history.Fail: "#d62728",
	history.Info: "#ff7f0e",
}

var outcomeOrder = []history.Type{history.OK, history.Fail, history.Info}

// latencySVG plots each operation's latency (completion minus invocation,
// log scale) against its invocation time, colored by outcome, and below it
// the completions per second by outcome, with the fault windows shaded
// across both panels. Huge histories are sampled.
func latencySVG(out io.Writer, title string, ops []history.Op, windows []Window) error {
	w := bufio.NewWriter(out)
	pairs := history.Pairs(ops)

	var tmax time.Duration
	for _, op := range ops {
		tmax = max(tmax, op.Time)
	}
	for _, win := range windows {
		tmax = max(tmax, win.End)
	}
	if tmax <= 0 {
		tmax = time.Second
	}
	lmin, lmax := time.Duration(math.MaxInt64), time.Duration(0)
	pending := 0
	for _, p := range pairs {
		if p[1].Time < 0 {
			pending++
			continue
		}
		l := max(p[1].Time-p[0].Time, minLatency)
		lmin, lmax = min(lmin, l), max(lmax, l)
	}
	if lmax == 0 {
		lmin, lmax = time.Millisecond, time.Second
	}
	decLo := math.Floor(math.Log10(lmin.Seconds()))
	decHi := math.Ceil(math.Log10(lmax.Seconds()))
	if decHi <= decLo {
		decHi = decLo + 1
	}
	x := func(t time.Duration) float64 {
		return plotLeft + (plotRight-plotLeft)*t.Seconds()/tmax.Seconds()
	}
	yLat := func(l time.Duration) float64 {
		f := (math.Log10(max(l, minLatency).Seconds()) - decLo) / (decHi - decLo)
		return latBottom - (latBottom-latTop)*f
	}

	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgWidth, svgHeight)
	fmt.Fprintf(w, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", plotLeft, esc(title))

	// Fault windows, behind everything else.
	for i, win := range windows {
		x0, x1 := x(win.Start), x(max(win.End, win.Start))
		if x1-x0 < 1 {
			x1 = x0 + 1
		}
		fmt.Fprintf(w, `<g><title>%s</title>`, esc(fmt.Sprintf("%s: %s .. %s", win.Name, win.Start.Round(time.Millisecond), win.End.Round(time.Millisecond))))
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.15"/>`, x0, latTop, x1-x0, latBottom-latTop, windowColor)
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.15"/>`, x0, tputTop, x1-x0, tputBottom-tputTop, windowColor)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" fill="#444">%s</text></g>`+"\n", x0+2, latTop+12+12*(i%4), esc(win.Name))
	}

	// Latency panel: axes, decade grid.
	fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">latency (log scale) by invocation time</text>`+"\n", plotLeft, latTop-8)
	for d := decLo; d <= decHi; d++ {
		l := time.Duration(math.Round(math.Pow(10, d) * float64(time.Second)))
		y := yLat(l)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, plotLeft, y, plotRight, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotLeft-4, y+4, esc(fmtLatency(l)))
	}
	axes(w, latTop, latBottom)
	timeTicks(w, x, tmax, latBottom)

	// Points, sampled if huge.
	step := 1
	if len(pairs) > maxPoints {
		step = (len(pairs) + maxPoints - 1) / maxPoints
	}
	counts := map[history.Type]int{}
	for i, p := range pairs {
		if p[1].Time < 0 {
			continue
		}
		typ := completionType(p[1].Type)
		counts[typ]++
		if i%step != 0 {
			continue
		}
		fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="1.8" fill="%s" fill-opacity="0.6"/>`+"\n",
			x(p[0].Time), yLat(p[1].Time-p[0].Time), outcomeColor[typ])
	}

	// Legend.
	lx := plotRight - 330
	for i, typ := range outcomeOrder {
		fmt.Fprintf(w, `<circle cx="%d" cy="%d" r="4" fill="%s"/><text x="%d" y="%d">%s (%d)</text>`+"\n",
			lx+i*95, 38, outcomeColor[typ], lx+i*95+8, 42, typ, counts[typ])
	}
	var notes []string
	if step > 1 {
		notes = append(notes, fmt.Sprintf("1 in %d operations plotted", step))
	}
	if pending > 0 {
		notes = append(notes, fmt.Sprintf("%d never completed (not plotted)", pending))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, `<text x="%d" y="56" fill="#666">%s</text>`+"\n", lx, esc(strings.Join(notes, "; ")))
	}

	// Throughput panel: completions per second by outcome.
	secs := int(tmax/time.Second) + 1
	buckets := map[history.Type][]int{}
	for _, typ := range outcomeOrder {
		buckets[typ] = make([]int, secs)
	}
	peak := 1
	for _, p := range pairs {
		if p[1].Time < 0 {
			continue
		}
		typ := completionType(p[1].Type)
		s := min(int(p[1].Time/time.Second), secs-1)
		buckets[typ][s]++
		peak = max(peak, buckets[typ][s])
	}
	yTput := func(n int) float64 { return tputBottom - (tputBottom-tputTop)*float64(n)/float64(peak) }
	fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">throughput (completions per second)</text>`+"\n", plotLeft, tputTop-8)
	for _, n := range []int{0, peak / 2, peak} {
		y := yTput(n)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, plotLeft, y, plotRight, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%d/s</text>`+"\n", plotLeft-4, y+4, n)
	}
	axes(w, tputTop, tputBottom)
	timeTicks(w, x, tmax, tputBottom)
	for _, typ := range outcomeOrder {
		var pts []string
		for s, n := range buckets[typ] {
			t0, t1 := time.Duration(s)*time.Second, min(time.Duration(s+1)*time.Second, tmax)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(t0), yTput(n), x(t1), yTput(n)))
		}
		fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", strings.Join(pts, " "), outcomeColor[typ])
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">time since start (s)</text>`+"\n", (plotLeft+plotRight)/2, svgHeight-12)
	fmt.Fprintln(w, `</svg>`)
	return w.Flush()
}

// completionType maps a completion to ok, fail or info.
func completionType(t history.Type) history.Type {
	switch t {
	case history.OK, history.Fail:
		return t
	}
	return history.Info
}

func axes(w io.Writer, top, bottom int) {
	fmt.Fprintf(w, `<polyline points="%d,%d %d,%d %d,%d" fill="none" stroke="black"/>`+"\n", plotLeft, top, plotLeft, bottom, plotRight, bottom)
}

// timeTicks labels the time axis at a 1-2-5 step giving at most 10 ticks.
func timeTicks(w io.Writer, x func(time.Duration) float64, tmax time.Duration, bottom int) {
	step := time.Millisecond
	for _, m := range []int64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000, 2000000, 5000000} {
		step = time.Duration(m) * time.Millisecond
		if tmax/step <= 10 {
			break
		}
	}
	for t := time.Duration(0); t <= tmax; t += step {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x(t), bottom, x(t), bottom+4, x(t), bottom+16, esc(fmt.Sprintf("%g", t.Seconds())))
	}
}

func fmtLatency(l time.Duration) string {
	switch {
	case l < time.Millisecond:
		return fmt.Sprintf("%gµs", float64(l)/float64(time.Microsecond))
	case l < time.Second:
		return fmt.Sprintf("%gms", float64(l)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%gs", l.Seconds())
	}
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return ""
	}
	return b.String()
}
