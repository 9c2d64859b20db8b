package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

// File names inside a run directory.
const (
	HistoryFile         = "history.jsonl"
	ResultsFile         = "results.json"
	SummaryFile         = "summary.txt"
	LinearizabilityFile = "linearizability.html"
	LatencyFile         = "latency.svg"
	LogsDir             = "logs"
)

// DefaultVisualizationBudget is the default total size of the per-volume
// linearizability pages, in bytes.
const DefaultVisualizationBudget = 8 << 20

// Window is a fault's active period, relative to the history's start.
type Window struct {
	Name  string        `json:"name"`
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
}

// Run is everything a run directory is made from.
type Run struct {
	Workload string
	Nemeses  []string
	Seed     uint64
	// Ops is the history.
	Ops []history.Op
	// Results are the checkers' results, in display order.
	Results []checker.Result
	// Windows are the fault windows, shaded in latency.svg and annotated
	// in the linearizability pages.
	Windows []Window
	// NodeLogs are paths of the nodes' log files: files inside the run
	// directory are referenced, others are copied into logs/.
	NodeLogs []string
	// Linearization is Porcupine's output per volume (see
	// checker.Linearizable); nil if the workload was not checked for it.
	Linearization []checker.VolumeLinearization
	// VisualizationBudget bounds the total bytes of linearizability pages;
	// 0 means DefaultVisualizationBudget.
	VisualizationBudget int64
	// Effects say what each fault window caused (see Effect).
	Effects []Effect
}

// Results is the schema of results.json.
type Results struct {
	Valid    checker.Verdict          `json:"valid"`
	Workload string                   `json:"workload"`
	Nemeses  []string                 `json:"nemeses"`
	Seed     uint64                   `json:"seed"`
	Ops      int                      `json:"ops"`    // operations (invocations)
	Events   int                      `json:"events"` // history events
	Checkers map[string]CheckerResult `json:"checkers"`
	// Order lists the checker names in display order.
	Order           []string        `json:"order"`
	Windows         []Window        `json:"windows"`
	Linearizability []VolumeSummary `json:"linearizability,omitempty"`
	Effects         []Effect        `json:"effects"`
	Logs            []string        `json:"logs"`
}

// CheckerResult is one checker's entry in results.json.
type CheckerResult struct {
	Valid     checker.Verdict `json:"valid"`
	Anomalies []string        `json:"anomalies"`
	Stats     map[string]any  `json:"stats"`
}

// VolumeSummary is one volume's Porcupine outcome in results.json.
type VolumeSummary struct {
	VID    string `json:"vid"`
	Result string `json:"result"` // Ok, Illegal or Unknown
	Ops    int    `json:"ops"`
	// HTML is the page's path in the run directory, empty if not
	// rendered; Note says why not.
	HTML string `json:"html,omitempty"`
	Note string `json:"note,omitempty"`
}

// Overall is the run's verdict: see checker.Overall.
func Overall(r Run) checker.Verdict { return checker.Overall(checker.Verdicts(r.Results)...) }

// Summary is the run's one-line verdict, for example
// "graft jepsen: workload=register nemesis=partition-leader seed=7 ops=1234
// valid=true (linearizable=true chain=true)".
func Summary(r Run) string {
	nem := strings.Join(r.Nemeses, ",")
	if nem == "" {
		nem = "none"
	}
	var parts []string
	for _, res := range r.Results {
		parts = append(parts, fmt.Sprintf("%s=%s", res.Name, res.Valid))
	}
	return fmt.Sprintf("graft jepsen: workload=%s nemesis=%s seed=%d ops=%d valid=%s (%s)",
		r.Workload, nem, r.Seed, len(history.Pairs(r.Ops)), Overall(r), strings.Join(parts, " "))
}

// Write writes the run directory dir (created if needed). It writes every
// file it can and returns the errors of those it could not.
func Write(dir string, r Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	var errs []error
	try := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", name, err))
		}
	}
	try(HistoryFile, writeFile(filepath.Join(dir, HistoryFile), func(w io.Writer) error {
		return history.WriteJSONL(w, r.Ops)
	}))
	vols, err := writeLinearizability(dir, r)
	try(LinearizabilityFile, err)
	try(LatencyFile, writeFile(filepath.Join(dir, LatencyFile), func(w io.Writer) error {
		return latencySVG(w, plotTitle(r), r.Ops, r.Windows)
	}))
	logs, err := copyLogs(dir, r.NodeLogs)
	try(LogsDir, err)
	res := results(r, vols, logs)
	try(ResultsFile, writeFile(filepath.Join(dir, ResultsFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(res)
	}))
	try(SummaryFile, writeFile(filepath.Join(dir, SummaryFile), func(w io.Writer) error {
		return writeSummary(w, r, res)
	}))
	return errors.Join(errs...)
}

// ReadResults reads a run directory's results.json.
func ReadResults(dir string) (Results, error) {
	var res Results
	b, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("decode %s: %w", ResultsFile, err)
	}
	return res, nil
}

func plotTitle(r Run) string {
	nem := strings.Join(r.Nemeses, ",")
	if nem == "" {
		nem = "none"
	}
	return fmt.Sprintf("graft jepsen: workload=%s nemesis=%s seed=%d", r.Workload, nem, r.Seed)
}

func results(r Run, vols []VolumeSummary, logs []string) Results {
	res := Results{
		Valid:           Overall(r),
		Workload:        r.Workload,
		Nemeses:         append([]string{}, r.Nemeses...),
		Seed:            r.Seed,
		Ops:             len(history.Pairs(r.Ops)),
		Events:          len(r.Ops),
		Checkers:        map[string]CheckerResult{},
		Order:           []string{},
		Windows:         append([]Window{}, r.Windows...),
		Linearizability: vols,
		Effects:         append([]Effect{}, r.Effects...),
		Logs:            append([]string{}, logs...),
	}
	for _, c := range r.Results {
		name := c.Name
		for i := 2; ; i++ {
			if _, dup := res.Checkers[name]; !dup {
				break
			}
			name = fmt.Sprintf("%s#%d", c.Name, i)
		}
		cr := CheckerResult{Valid: c.Valid, Anomalies: c.Anomalies, Stats: c.Stats}
		if cr.Anomalies == nil {
			cr.Anomalies = []string{}
		}
		if cr.Stats == nil {
			cr.Stats = map[string]any{}
		}
		res.Checkers[name] = cr
		res.Order = append(res.Order, name)
	}
	return res
}

func writeSummary(w io.Writer, r Run, res Results) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, Summary(r))
	fmt.Fprintln(bw)
	for _, name := range res.Order {
		c := res.Checkers[name]
		fmt.Fprintf(bw, "%s: %s\n", name, c.Valid)
		for _, a := range c.Anomalies {
			fmt.Fprintf(bw, "  - %s\n", a)
		}
		if len(c.Stats) > 0 {
			b, err := json.Marshal(c.Stats)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "  stats: %s\n", b)
		}
	}
	if len(r.Windows) > 0 {
		fmt.Fprintln(bw, "\nfault windows:")
		for _, win := range r.Windows {
			fmt.Fprintf(bw, "  %s: %s .. %s\n", win.Name, win.Start.Round(time.Millisecond), win.End.Round(time.Millisecond))
		}
	}
	writeEffectsText(bw, r.Effects)
	if len(res.Linearizability) > 0 {
		fmt.Fprintln(bw, "\nlinearizability by volume:")
		for _, v := range res.Linearizability {
			where := v.HTML
			if where == "" {
				where = v.Note
			}
			fmt.Fprintf(bw, "  %s: %s (%d ops) %s\n", v.VID, v.Result, v.Ops, where)
		}
	}
	fmt.Fprintf(bw, "\nfiles: %s %s %s %s %s\n", HistoryFile, ResultsFile, LinearizabilityFile, LatencyFile, SummaryFile)
	for _, l := range res.Logs {
		fmt.Fprintf(bw, "  log: %s\n", l)
	}
	return bw.Flush()
}

// writeFile creates path and fills it with fill.
func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	if err := fill(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyLogs copies the node logs outside dir into dir/logs and returns the
// logs' paths relative to dir.
func copyLogs(dir string, paths []string) ([]string, error) {
	if len(paths) == 0 {
		return []string{}, nil
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bases := map[string]int{}
	for _, p := range paths {
		bases[filepath.Base(p)]++
	}
	var out []string
	var errs []error
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rel, err := filepath.Rel(absDir, abs); err == nil && !strings.HasPrefix(rel, "..") {
			out = append(out, filepath.ToSlash(rel))
			continue
		}
		name := filepath.Base(p)
		if bases[name] > 1 { // say n1/node.log, n2/node.log
			name = fmt.Sprintf("%d-%s-%s", i, filepath.Base(filepath.Dir(p)), name)
		}
		rel := filepath.Join(LogsDir, name)
		if err := copyFile(filepath.Join(dir, rel), p); err != nil {
			errs = append(errs, fmt.Errorf("copy log %s: %w", p, err))
			continue
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out, errors.Join(errs...)
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return writeFile(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
