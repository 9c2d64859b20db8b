// Package statuspage holds what the HTML status pages of nodes (cluster)
// and edges (edge) share: a per-second Ring of request counts and
// latencies for the last minute, an inline SVG Sparkline, and the page
// frame (stylesheet, auto-refresh, helpers) every page's template is
// parsed into. It imports nothing of graft's, so both cluster and edge may
// import it without breaking the one-way import rule.
//
// The pages need no assets and no JavaScript: the frame refreshes itself
// with a meta refresh every RefreshSeconds (?refresh=0 turns it off, any
// other number of seconds sets it), and a sparkline is an <svg> element
// in the page. Nothing secret may be put on a page: it is served without
// a token.
package statuspage

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RefreshSeconds is the pages' default auto-refresh interval.
const RefreshSeconds = 5

// frame is the outer page; a page's own template defines "body".
const frame = `{{define "page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.2em 2em;color:#1d2430;background:#fafbfc}
h1{font-size:1.35em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.4em 0 .4em;color:#394456}
.sub{color:#6b7585;margin-bottom:1em}
table{border-collapse:collapse;margin:.2em 0}th,td{padding:.25em .8em .25em 0;text-align:left;vertical-align:top}
th{color:#6b7585;font-weight:600;border-bottom:1px solid #dde2e8}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.kv td:first-child{color:#6b7585;padding-right:1.5em}
.leader{font-weight:700;color:#0a6b2f}.bad{color:#b3261e;font-weight:600}.muted{color:#8a93a1}
.spark{display:flex;gap:2.5em;flex-wrap:wrap}.spark figure{margin:0}.spark figcaption{color:#6b7585;font-size:.9em}
svg.sl{background:#fff;border:1px solid #dde2e8;display:block}
code{font-size:.92em}
</style></head>
<body>
<h1>{{.Title}}</h1>
<div class="sub">{{.Subtitle}} · {{.Now.Format "2006-01-02 15:04:05 MST"}}{{if .Refresh}} · refreshes every {{.Refresh}} s (<a href="?refresh=0">stop</a>){{end}}</div>
{{template "body" .}}
</body></html>{{end}}`

// Frame is embedded by every page's data: what the frame shows.
type Frame struct {
	Title    string
	Subtitle string
	Now      time.Time
	// Refresh is the meta-refresh interval in seconds; 0 turns it off.
	Refresh int
}

// NewFrame returns the frame for a request: ?refresh=N sets the interval
// (0 turns it off), else RefreshSeconds.
func NewFrame(r *http.Request, title, subtitle string) Frame {
	f := Frame{Title: title, Subtitle: subtitle, Now: time.Now(), Refresh: RefreshSeconds}
	if v := r.URL.Query().Get("refresh"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 3600 {
			f.Refresh = n
		}
	}
	return f
}

// Funcs are the helpers every page template may call.
var Funcs = template.FuncMap{
	"bytes":     Bytes,
	"ms":        Millis,
	"sparkline": func(vs []float64, unit string) template.HTML { return Sparkline(vs, 240, 48, unit) },
	"pct":       func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
	"rate":      func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
}

// New parses body (which must define "body") into the shared frame; run
// the result with ExecuteTemplate(w, "page", data). It panics on a bad
// template, like template.Must: templates are constants.
func New(name, body string) *template.Template {
	t := template.Must(template.New(name).Funcs(Funcs).Parse(frame))
	return template.Must(t.Parse(body))
}

// Render writes t's page for data as an uncached HTML response.
func Render(w http.ResponseWriter, t *template.Template, data any) error {
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "page", data); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return fmt.Errorf("render status page: %w", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write([]byte(b.String()))
	return err
}

// Bytes formats n bytes with a binary unit: 0 B, 12.0 KiB, 3.4 GiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Millis formats d in milliseconds with up to three decimals ("-" for 0).
func Millis(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + " ms"
}

// Sparkline returns an inline SVG line chart of vs (oldest first), w x h
// pixels, scaled from 0 to the largest value; its <title> (a tooltip)
// names the largest and the last value with unit. Empty vs draws an empty
// box.
func Sparkline(vs []float64, w, h int, unit string) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="sl" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, w, h, w, h)
	peak, last := 0.0, 0.0
	for _, v := range vs {
		peak = max(peak, v)
	}
	if len(vs) > 0 {
		last = vs[len(vs)-1]
	}
	fmt.Fprintf(&b, `<title>max %s %s, last %s %s</title>`,
		template.HTMLEscapeString(num(peak)), template.HTMLEscapeString(unit), template.HTMLEscapeString(num(last)), template.HTMLEscapeString(unit))
	if len(vs) > 0 {
		const pad = 2.0
		scale := 0.0
		if peak > 0 {
			scale = (float64(h) - 2*pad) / peak
		}
		step := 0.0
		if len(vs) > 1 {
			step = (float64(w) - 2*pad) / float64(len(vs)-1)
		}
		var pts strings.Builder
		for i, v := range vs {
			if i > 0 {
				pts.WriteByte(' ')
			}
			fmt.Fprintf(&pts, "%.1f,%.1f", pad+float64(i)*step, float64(h)-pad-max(v, 0)*scale)
		}
		fmt.Fprintf(&b, `<polygon fill="#d7e6fb" stroke="none" points="%.1f,%.1f %s %.1f,%.1f"/>`,
			pad, float64(h)-pad, pts.String(), pad+float64(len(vs)-1)*step, float64(h)-pad)
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#2462c2" stroke-width="1.5" points="%s"/>`, pts.String())
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // only numbers and escaped text went in
}

// num formats f with at most two decimals, trailing zeros dropped.
func num(f float64) string {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
