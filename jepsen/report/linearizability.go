package report

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/graft-cluster/graft/jepsen/checker"
)

// linearizabilityDir holds one Porcupine page per volume.
const linearizabilityDir = "linearizability"

// Size estimates for a Porcupine page, used to skip hopeless renders
// before spending time and memory on them: bytes per operation and per
// step of a partial linearization.
const (
	bytesPerOp   = 400
	bytesPerStep = 60
	fixedBytes   = 64 << 10
)

// writeLinearizability renders the volumes' Porcupine pages within the
// budget (non-linearizable volumes first, then undecided, then the rest)
// and an index page linking them.
func writeLinearizability(dir string, r Run) ([]VolumeSummary, error) {
	budget := r.VisualizationBudget
	if budget <= 0 {
		budget = DefaultVisualizationBudget
	}
	lins := append([]checker.VolumeLinearization(nil), r.Linearization...)
	rank := map[porcupine.CheckResult]int{porcupine.Illegal: 0, porcupine.Unknown: 1, porcupine.Ok: 2}
	sort.SliceStable(lins, func(i, j int) bool {
		if a, b := rank[lins[i].Result], rank[lins[j].Result]; a != b {
			return a < b
		}
		return lins[i].VID < lins[j].VID
	})
	model := checker.RegisterModel()
	annotations := windowAnnotations(r.Windows)
	var vols []VolumeSummary
	used := map[string]bool{}
	for _, l := range lins {
		v := VolumeSummary{VID: l.VID, Result: string(l.Result), Ops: l.Ops}
		parts := l.Info.PartialLinearizations()
		est := int64(fixedBytes + bytesPerOp*l.Ops)
		for _, p := range parts {
			for _, lin := range p {
				est += int64(bytesPerStep * len(lin))
			}
		}
		switch {
		case len(parts) == 0:
			v.Note = "not rendered: the check did not start before the timeout"
		case est > budget:
			v.Note = fmt.Sprintf("not rendered: about %d KiB, over the remaining budget of %d KiB", est>>10, budget>>10)
		default:
			info := l.Info
			info.AddAnnotations(annotations)
			var buf bytes.Buffer
			if err := porcupine.Visualize(model, info, &buf); err != nil {
				return vols, fmt.Errorf("visualize vid %s: %w", l.VID, err)
			}
			if int64(buf.Len()) > budget {
				v.Note = fmt.Sprintf("not rendered: %d KiB, over the remaining budget of %d KiB", buf.Len()>>10, budget>>10)
				break
			}
			budget -= int64(buf.Len())
			name := fileName(l.VID, used)
			v.HTML = filepath.ToSlash(filepath.Join(linearizabilityDir, name))
			if err := os.MkdirAll(filepath.Join(dir, linearizabilityDir), 0o755); err != nil {
				return vols, err
			}
			if err := os.WriteFile(filepath.Join(dir, v.HTML), buf.Bytes(), 0o644); err != nil {
				return vols, err
			}
		}
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].VID < vols[j].VID })
	return vols, writeFile(filepath.Join(dir, LinearizabilityFile), func(w io.Writer) error {
		return writeIndex(w, r, vols)
	})
}

// windowAnnotations shows the fault windows as a "nemesis" row.
func windowAnnotations(ws []Window) []porcupine.Annotation {
	out := make([]porcupine.Annotation, 0, len(ws))
	for _, w := range ws {
		out = append(out, porcupine.Annotation{
			Tag:             "nemesis",
			Start:           int64(w.Start),
			End:             int64(w.End),
			Description:     w.Name,
			Details:         fmt.Sprintf("%s from %s to %s", w.Name, w.Start, w.End),
			BackgroundColor: "#f4cccc",
		})
	}
	return out
}

// fileName makes a safe, unique file name for a volume's page.
func fileName(vid string, used map[string]bool) string {
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, vid)
	if base == "" {
		base = "volume"
	}
	name := base + ".html"
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d.html", base, i)
	}
	used[name] = true
	return name
}

func writeIndex(w io.Writer, r Run, vols []VolumeSummary) error {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>linearizability</title>\n")
	b.WriteString("<style>body{font-family:sans-serif}td,th{padding:2px 10px;text-align:left}.Illegal{color:#b00}.Unknown{color:#a60}.Ok{color:#070}</style>\n")
	b.WriteString("</head><body>\n")
	fmt.Fprintf(&b, "<h1>Linearizability</h1>\n<p>%s</p>\n", html.EscapeString(Summary(r)))
	if len(vols) == 0 {
		b.WriteString("<p>This run was not checked for linearizability (no register operations).</p>\n")
	} else {
		b.WriteString("<p>Porcupine checks each volume's commits and head reads against a register of (lsn, hash); unknown outcomes may apply at any time after their invocation, or never. Conflicts that provably hold (the head had already moved past their base) are not shown, and unknown outcomes end where they can no longer apply. Fault windows appear as the <em>nemesis</em> row.</p>\n")
		b.WriteString("<table><tr><th>volume</th><th>result</th><th>ops</th><th>visualization</th></tr>\n")
		for _, v := range vols {
			link := html.EscapeString(v.Note)
			if v.HTML != "" {
				link = fmt.Sprintf("<a href=\"%s\">%s</a>", html.EscapeString(v.HTML), html.EscapeString(v.HTML))
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td class=\"%s\">%s</td><td>%d</td><td>%s</td></tr>\n",
				html.EscapeString(v.VID), html.EscapeString(v.Result), html.EscapeString(v.Result), v.Ops, link)
		}
		b.WriteString("</table>\n")
	}
	writeEffectsHTML(&b, r.Effects)
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
