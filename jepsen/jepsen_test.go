package jepsen_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen"
	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/report"
)

// build compiles bin/graft into a temp dir, with extra flags (tags).
func build(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "graft")
	cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", bin, "github.com/graft-cluster/graft/cmd/graft")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build graft %v: %v", args, err)
	}
	return bin
}

func run(t *testing.T, bin string, o jepsen.Options) (jepsen.Outcome, report.Results) {
	t.Helper()
	o.Binary, o.Out = bin, filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := jepsen.Run(ctx, o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Log(out.Summary)
	res, err := report.ReadResults(out.Dir)
	if err != nil {
		t.Fatalf("read results: %v", err)
	}
	return out, res
}

// A short run under crashes and partitions of the leader must pass every
// checker: the smoke test of the suite that `make test` runs.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	bin := build(t, "-race")
	out, _ := run(t, bin, jepsen.Options{
		Workload: "register", Nemeses: []string{"partition-leader", "kill-leader"},
		TimeLimit: 15 * time.Second, Seed: 7, Quiet: time.Second, Hold: 3 * time.Second, Processes: 6,
	})
	if out.Verdict != checker.Valid {
		t.Fatalf("verdict %s, want true; report in %s", out.Verdict, out.Dir)
	}
	for _, f := range []string{"history.jsonl", "results.json", "linearizability.html", "latency.svg", "summary.txt"} {
		if _, err := os.Stat(filepath.Join(out.Dir, f)); err != nil {
			t.Errorf("report lacks %s: %v", f, err)
		}
	}
}

// The smoke test with TLS on every link (HTTPS to nodes and the edge,
// mutual TLS between nodes, through the fault proxies) and a token on every
// call, reads through an edge: every checker must still pass.
func TestSmokeSecure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	bin := build(t, "-race")
	out, _ := run(t, bin, jepsen.Options{
		Workload: "register", Nemeses: []string{"partition-leader", "kill-leader"}, Edges: 1, Secure: true,
		TimeLimit: 15 * time.Second, Seed: 7, Quiet: time.Second, Hold: 3 * time.Second, Processes: 6,
	})
	if out.Verdict != checker.Valid {
		t.Fatalf("verdict %s, want true; report in %s", out.Verdict, out.Dir)
	}
	hist, err := os.ReadFile(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hist), `"type":"ok"`) {
		t.Fatal("no operation succeeded: the clients were refused")
	}
}

// The checkers can fail: every fast bug of the planted-bug catalog
// (jepsen.PlantedBugs, each a build tag) must be reported invalid by its
// checker, on a short run of its matrix row (an entry with several
// FastSeeds tries them in turn, stopping at the first catch: the read-path
// bug's window is a race). make jepsen-planted runs every bug on its full
// row over three seeds.
func TestPlantedBugIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	bins := map[string]string{} // by tag, built once, kept until the test ends
	for _, b := range jepsen.PlantedBugs {
		if b.Fast && bins[b.Tag] == "" {
			bins[b.Tag] = build(t, "-tags", b.Tag)
		}
	}
	for _, b := range jepsen.PlantedBugs {
		if !b.Fast {
			continue
		}
		t.Run(b.Tag+"/"+b.Workload+"/"+strings.Join(b.Nemeses, ","), func(t *testing.T) {
			seeds, hold := b.FastSeeds, b.FastHold
			if len(seeds) == 0 {
				seeds = []uint64{1}
			}
			if hold == 0 {
				hold = 3 * time.Second
			}
			procs := b.FastProcesses
			if procs == 0 {
				procs = 6
			}
			var last jepsen.Outcome
			for _, seed := range seeds {
				out, res := run(t, bins[b.Tag], jepsen.Options{
					Workload: b.Workload, Nemeses: b.Nemeses, Edges: b.Edges, TimeLimit: b.FastTimeLimit, Seed: seed, Processes: procs,
					Quiet: time.Second, Hold: hold,
				})
				if out.Verdict == checker.Invalid {
					if c, ok := res.Checkers[b.Checker]; !ok || c.Valid != checker.Invalid {
						t.Fatalf("checker %s did not report planted bug %s: %+v; report in %s", b.Checker, b.Tag, res.Checkers[b.Checker], out.Dir)
					}
					return
				}
				t.Logf("seed %d: verdict %s with planted bug %s; report in %s", seed, out.Verdict, b.Tag, out.Dir)
				last = out
			}
			t.Fatalf("verdict %s with planted bug %s (%s) in seeds %v, want false; last report in %s", last.Verdict, b.Tag, b.What, seeds, last.Dir)
		})
	}
}
