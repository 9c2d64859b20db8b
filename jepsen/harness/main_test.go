package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/harness"
)

// graftBin is the race-enabled graft binary TestMain builds; "" under
// -short, where no test starts a cluster.
var graftBin string

// helperEnv makes the test binary run a cluster instead of tests (see
// runHelper); the orphan test then SIGKILLs it.
const (
	helperEnv    = "GRAFT_HARNESS_HELPER"
	helperDirEnv = "GRAFT_HARNESS_HELPER_DIR"
	helperBinEnv = "GRAFT_HARNESS_HELPER_BIN"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "cluster" {
		os.Exit(runHelper())
	}
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "graft-harness-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	graftBin = filepath.Join(dir, "graft")
	build := exec.Command("go", "build", "-race", "-o", graftBin, "github.com/graft-cluster/graft/cmd/graft")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build graft:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testConfig returns a Config for a cluster in a fresh temp dir, logging
// to the test's output.
func testConfig(t *testing.T) harness.Config {
	t.Helper()
	if graftBin == "" {
		t.Skip("starts a cluster of real processes; skipped with -short")
	}
	cfg := harness.DefaultConfig()
	cfg.Binary = graftBin
	cfg.Dir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	// A -race process sleeps a second in exit by default.
	cfg.Env = []string{"GORACE=atexit_sleep_ms=0"}
	cfg.StopTimeout = 10 * time.Second
	return cfg
}

// startCluster starts a cluster and stops it when the test ends, checking
// that no process crashed or reported a data race.
func startCluster(t *testing.T, mutate func(*harness.Config)) *harness.Cluster {
	t.Helper()
	cfg := testConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	c, err := harness.Start(ctx, cfg)
	if err != nil {
		dumpLogs(t, cfg.Dir)
		t.Fatalf("Start: %v", err)
	}
	t.Logf("cluster started in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		t.Logf("cluster stopped in %s", time.Since(start).Round(time.Millisecond))
		for _, e := range c.UnexpectedExits() {
			t.Errorf("unexpected exit: %+v", e)
		}
		checkNoRaces(t, c)
		if t.Failed() {
			dumpLogs(t, cfg.Dir)
		}
	})
	return c
}

// checkNoRaces fails the test if a node or the object store reported a
// data race in its log.
func checkNoRaces(t *testing.T, c *harness.Cluster) {
	t.Helper()
	for i := -1; i < c.Nodes(); i++ {
		if c.LogPath(i) == "" {
			continue // no object store
		}
		b, err := os.ReadFile(c.LogPath(i))
		if err != nil {
			t.Errorf("read log: %v", err)
			continue
		}
		if bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("%s reports a data race", c.LogPath(i))
		}
	}
}

// dumpLogs logs the tail of every log under dir.
func dumpLogs(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "node.log"))
	logs = append(logs, filepath.Join(dir, "s3.log"))
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("%s (tail):\n%s", path, strings.Join(lines, "\n"))
	}
}

// runHelper starts a cluster in $GRAFT_HARNESS_HELPER_DIR, writes the
// process IDs to pids.json there and waits to be killed.
func runHelper() int {
	dir, bin := os.Getenv(helperDirEnv), os.Getenv(helperBinEnv)
	cfg := harness.DefaultConfig()
	cfg.Binary, cfg.Dir = bin, filepath.Join(dir, "cluster")
	cfg.Env = []string{"GORACE=atexit_sleep_ms=0"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := harness.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: start:", err)
		return 2
	}
	pids := []int{c.PID(-1)}
	for i := range c.Nodes() {
		pids = append(pids, c.PID(i))
	}
	b, _ := json.Marshal(pids)
	if err := os.WriteFile(filepath.Join(dir, "pids.json.tmp"), b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	if err := os.Rename(filepath.Join(dir, "pids.json.tmp"), filepath.Join(dir, "pids.json")); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	select {} // until killed
}

func TestConfig_Validate(t *testing.T) {
	cfg := harness.DefaultConfig()
	if err := cfg.Validate(); err == nil {
		t.Error("Validate of a config without binary and dir succeeded")
	}
	cfg.Binary, cfg.Dir = "/bin/true", t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
	for name, mutate := range map[string]func(*harness.Config){
		"no nodes":         func(c *harness.Config) { c.Nodes = 0 },
		"ten nodes":        func(c *harness.Config) { c.Nodes = 10 },
		"no bucket":        func(c *harness.Config) { c.Bucket = "" },
		"zero election":    func(c *harness.Config) { c.RaftElectionTimeout = 0 },
		"zero stop":        func(c *harness.Config) { c.StopTimeout = 0 },
		"negative request": func(c *harness.Config) { c.RequestTimeout = -time.Second },
	} {
		c := cfg
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate succeeded", name)
		}
	}
	noStore := cfg
	noStore.NoObjectStore, noStore.Bucket = true, ""
	if err := noStore.Validate(); err != nil {
		t.Errorf("no object store and no bucket: Validate = %v, want nil", err)
	}
}
