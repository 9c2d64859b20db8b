package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/report"
)

// smallRun is a register run on one volume: two acked commits, a
// conflict, an unknown outcome and reads; stale makes the last read see
// the first commit after the second completed.
func smallRun(tb testing.TB, stale bool) report.Run {
	tb.Helper()
	ms := time.Millisecond
	lastLSN, lastHash := uint64(2), "b"
	if stale {
		lastLSN, lastHash = 1, "a"
	}
	ops := []history.Op{
		{Process: 0, Type: history.Invoke, F: "commit", VID: "vol", Base: 0, Hash: "a", Time: 1 * ms},
		{Process: 1, Type: history.Invoke, F: "read", VID: "vol", Time: 2 * ms},
		{Process: 0, Type: history.OK, F: "commit", VID: "vol", LSN: 1, Time: 3 * ms},
		{Process: 1, Type: history.OK, F: "read", VID: "vol", LSN: 1, Hash: "a", Time: 5 * ms},
		{Process: 0, Type: history.Invoke, F: "commit", VID: "vol", Base: 1, Hash: "b", Time: 900 * ms},
		{Process: 2, Type: history.Invoke, F: "commit", VID: "vol", Base: 1, Hash: "c", Time: 901 * ms},
		{Process: 0, Type: history.OK, F: "commit", VID: "vol", LSN: 2, Time: 1500 * ms},
		{Process: 2, Type: history.Fail, F: "commit", VID: "vol", Head: 2, Error: "conflict", Time: 1501 * ms},
		{Process: 3, Type: history.Invoke, F: "commit", VID: "vol", Base: 2, Hash: "d", Time: 1600 * ms},
		{Process: 3, Type: history.Info, F: "commit", VID: "vol", Error: "timeout", Time: 2600 * ms},
		{Process: 1, Type: history.Invoke, F: "read", VID: "vol", Time: 2700 * ms},
		{Process: 1, Type: history.OK, F: "read", VID: "vol", LSN: lastLSN, Hash: lastHash, Time: 2702 * ms},
		{Process: 4, Type: history.Invoke, F: "read", VID: "vol", Time: 2800 * ms},
	}
	for i := range ops {
		ops[i].Index = i
	}
	lin, lins := checker.Linearizable(ops, 10*time.Second)
	chain := []checker.Entry{{LSN: 1, Hash: "a"}, {LSN: 2, Hash: "b"}}
	finals := []map[string][]checker.Entry{{"vol": chain}, {"vol": chain}, {"vol": chain}}
	logDir := tb.TempDir()
	var logs []string
	for _, n := range []string{"n1", "n2"} {
		p := filepath.Join(logDir, n, "node.log")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("log of "+n+"\n"), 0o644); err != nil {
			tb.Fatal(err)
		}
		logs = append(logs, p)
	}
	return report.Run{
		Workload:      "register",
		Nemeses:       []string{"partition-leader", "kill"},
		Seed:          7,
		Ops:           ops,
		Results:       []checker.Result{lin, checker.Chain(ops, finals)},
		Windows:       []report.Window{{Name: "partition <leader> & co", Start: 800 * ms, End: 1700 * ms}, {Name: "kill n2", Start: 2 * time.Second, End: 2500 * ms}},
		NodeLogs:      logs,
		Linearization: lins,
	}
}

func TestWrite(t *testing.T) {
	unknown := smallRun(t, false)
	unknown.Results = append(unknown.Results, checker.Result{Name: "bucket", Valid: checker.Unknown})
	for _, tc := range []struct {
		name string
		run  report.Run
		want checker.Verdict
	}{
		{"valid", smallRun(t, false), checker.Valid},
		{"stale read", smallRun(t, true), checker.Invalid},
		{"one checker unknown", unknown, checker.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if err := report.Write(dir, tc.run); err != nil {
				t.Fatal(err)
			}

			// results.json: verdict as JSON true/false/"unknown".
			b, err := os.ReadFile(filepath.Join(dir, report.ResultsFile))
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatalf("results.json: %v", err)
			}
			wantRaw := map[checker.Verdict]any{checker.Valid: true, checker.Invalid: false, checker.Unknown: "unknown"}[tc.want]
			if raw["valid"] != wantRaw {
				t.Fatalf("valid = %#v, want %#v", raw["valid"], wantRaw)
			}
			res, err := report.ReadResults(dir)
			if err != nil {
				t.Fatal(err)
			}
			if res.Valid != tc.want || res.Workload != "register" || res.Seed != 7 || res.Ops != 7 || res.Events != 13 {
				t.Fatalf("results: %+v", res)
			}
			lin, ok := res.Checkers["linearizable"]
			if !ok || len(res.Checkers) != len(tc.run.Results) {
				t.Fatalf("checkers: %+v", res.Checkers)
			}
			if (tc.name == "stale read") != (lin.Valid == checker.Invalid) || (lin.Valid == checker.Invalid) != (len(lin.Anomalies) > 0) {
				t.Fatalf("linearizable: %+v", lin)
			}
			if len(res.Logs) != 2 || res.Logs[0] == res.Logs[1] {
				t.Fatalf("logs: %v", res.Logs)
			}
			for _, l := range res.Logs {
				if b, err := os.ReadFile(filepath.Join(dir, l)); err != nil || !strings.HasPrefix(string(b), "log of n") {
					t.Fatalf("log %s: %q, %v", l, b, err)
				}
			}

			// history.jsonl round-trips.
			back, err := history.ReadFile(filepath.Join(dir, report.HistoryFile))
			if err != nil || len(back) != len(tc.run.Ops) {
				t.Fatalf("history: %d ops, %v", len(back), err)
			}

			// latency.svg is well-formed XML with one point per completed op.
			svg, err := os.ReadFile(filepath.Join(dir, report.LatencyFile))
			if err != nil {
				t.Fatal(err)
			}
			circles := wellFormed(t, svg)
			if want := 6 + 3; circles != want { // 6 completed ops + 3 legend dots
				t.Fatalf("svg has %d circles, want %d", circles, want)
			}
			if !bytes.Contains(svg, []byte("partition &lt;leader&gt; &amp; co")) {
				t.Fatal("svg lacks the escaped window label")
			}

			// linearizability.html links the volume's Porcupine page.
			if len(res.Linearizability) != 1 || res.Linearizability[0].HTML == "" {
				t.Fatalf("linearizability: %+v", res.Linearizability)
			}
			index, err := os.ReadFile(filepath.Join(dir, report.LinearizabilityFile))
			if err != nil || !bytes.Contains(index, []byte(res.Linearizability[0].HTML)) {
				t.Fatalf("index: %v\n%s", err, index)
			}
			page, err := os.ReadFile(filepath.Join(dir, res.Linearizability[0].HTML))
			if err != nil || !bytes.Contains(page, []byte("<html")) || !bytes.Contains(page, []byte("partition")) {
				t.Fatalf("page: %v (%d bytes)", err, len(page))
			}

			// summary.txt starts with the summary line.
			sum, err := os.ReadFile(filepath.Join(dir, report.SummaryFile))
			if err != nil || !strings.HasPrefix(string(sum), report.Summary(tc.run)+"\n") {
				t.Fatalf("summary.txt: %v\n%s", err, sum)
			}
		})
	}
}

// wellFormed decodes svg as XML and returns its number of circles.
func wellFormed(tb testing.TB, svg []byte) int {
	tb.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	circles, depth, roots := 0, 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("svg is not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if el.Name.Local != "svg" {
					tb.Fatalf("root element %s", el.Name.Local)
				}
			}
			if el.Name.Local == "circle" {
				circles++
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		tb.Fatalf("svg: %d roots, depth %d at the end", roots, depth)
	}
	return circles
}

func TestSummary(t *testing.T) {
	r := smallRun(t, false)
	want := "graft jepsen: workload=register nemesis=partition-leader,kill seed=7 ops=7 valid=true (linearizable=true chain=true)"
	if got := report.Summary(r); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	r = smallRun(t, true)
	r.Nemeses = nil
	want = "graft jepsen: workload=register nemesis=none seed=7 ops=7 valid=false (linearizable=false chain=true)"
	if got := report.Summary(r); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestWrite_VisualizationBudget(t *testing.T) {
	r := smallRun(t, true)
	r.VisualizationBudget = 1 << 10 // far below one page
	dir := t.TempDir()
	if err := report.Write(dir, r); err != nil {
		t.Fatal(err)
	}
	res, err := report.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := res.Linearizability[0]
	if v.HTML != "" || !strings.Contains(v.Note, "not rendered") || v.Result != "Illegal" {
		t.Fatalf("volume: %+v", v)
	}
	index, err := os.ReadFile(filepath.Join(dir, report.LinearizabilityFile))
	if err != nil || !bytes.Contains(index, []byte("not rendered")) {
		t.Fatalf("index: %v\n%s", err, index)
	}
	if _, err := os.Stat(filepath.Join(dir, "linearizability")); !os.IsNotExist(err) {
		t.Fatalf("a page was written: %v", err)
	}
}

func TestWrite_NoLinearizabilityAndLargeHistory(t *testing.T) {
	// A bank-like run: no Porcupine output, many operations (sampled in
	// the plot), logs already in the run directory.
	dir := t.TempDir()
	logPath := filepath.Join(dir, "node0.log")
	if err := os.WriteFile(logPath, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var ops []history.Op
	for i := range 20500 {
		inv := history.Op{Index: 2 * i, Process: i % 7, Type: history.Invoke, F: "balances", VID: "b", Time: time.Duration(i) * time.Millisecond}
		done := inv
		done.Index, done.Type, done.Time, done.Values = 2*i+1, history.OK, inv.Time+time.Duration(1+i%50)*time.Millisecond, []int64{100}
		ops = append(ops, inv, done)
	}
	r := report.Run{Workload: "bank", Seed: 1, Ops: ops, Results: []checker.Result{checker.Bank(ops, 100, 1)}, NodeLogs: []string{logPath}}
	if err := report.Write(dir, r); err != nil {
		t.Fatal(err)
	}
	res, err := report.ReadResults(dir)
	if err != nil || res.Valid != checker.Valid || len(res.Logs) != 1 || res.Logs[0] != "node0.log" {
		t.Fatalf("results %+v, %v", res, err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, report.LatencyFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := wellFormed(t, svg); n > 20000+3 {
		t.Fatalf("svg has %d circles: not sampled", n)
	}
	if !bytes.Contains(svg, []byte("1 in 2 operations plotted")) {
		t.Fatal("svg does not say it sampled")
	}
	if _, err := os.Stat(filepath.Join(dir, report.LinearizabilityFile)); err != nil {
		t.Fatal(err)
	}
}

func TestWrite_MissingLog(t *testing.T) {
	r := smallRun(t, false)
	r.NodeLogs = append(r.NodeLogs, filepath.Join(t.TempDir(), "missing.log"))
	dir := t.TempDir()
	err := report.Write(dir, r)
	if err == nil || !strings.Contains(err.Error(), "missing.log") {
		t.Fatalf("err = %v, want a copy error naming missing.log", err)
	}
	// Everything else was still written.
	if res, err := report.ReadResults(dir); err != nil || res.Valid != checker.Valid {
		t.Fatalf("results %+v, %v", res, err)
	}
}

// The effects of the fault windows reach results.json, summary.txt and
// the HTML report, a fault without effect included.
func TestWrite_Effects(t *testing.T) {
	r := smallRun(t, false)
	r.Effects = []report.Effect{
		{Nemesis: "s3", Mode: "s3-blackhole", What: "blackhole: held", Start: 0.8, End: 1.7, NoEffect: "no flush round failed",
			Summary: "s3-blackhole 0.8-1.7 s: no effect: no flush round failed; 0 rounds completed"},
		{Nemesis: "kill", What: "SIGKILL n2", Start: 2, End: 2.5, LeaderChanges: 1, Leaders: []string{"n2", "n1"},
			ErrorsByCode: map[string]int{"unavailable": 3}, Summary: "kill 2.0-2.5 s: leader n2 > n1"},
	}
	dir := filepath.Join(t.TempDir(), "run")
	if err := report.Write(dir, r); err != nil {
		t.Fatal(err)
	}
	res, err := report.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Effects) != 2 || res.Effects[0].NoEffect != "no flush round failed" || res.Effects[1].ErrorsByCode["unavailable"] != 3 {
		t.Fatalf("results.json effects = %+v", res.Effects)
	}
	sum, err := os.ReadFile(filepath.Join(dir, report.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fault effects (2 windows, 1 with no effect):", "  s3-blackhole 0.8-1.7 s: no effect: no flush round failed", "  kill 2.0-2.5 s: leader n2 > n1"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("summary.txt lacks %q:\n%s", want, sum)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, report.LinearizabilityFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "<h2>Fault effects</h2>") || !strings.Contains(string(page), "no effect: no flush round failed") {
		t.Errorf("HTML report lacks the effects table")
	}
}
