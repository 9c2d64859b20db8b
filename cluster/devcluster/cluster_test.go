//go:build unix

package devcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/cluster/devcluster"
	"github.com/graft-cluster/graft/objstore/fakes3"
)

// setMode makes node id of cfg's cluster run the fake node in mode.
func setMode(t *testing.T, cfg *devcluster.Config, id, mode string) {
	t.Helper()
	dir := filepath.Join(cfg.Dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, modeFile), []byte(mode), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readArgs returns the arguments node id's latest process was started with.
func readArgs(t *testing.T, dir, id string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, id, "args.json"))
	if err != nil {
		t.Fatalf("read %s args: %v", id, err)
	}
	var args []string
	if err := json.Unmarshal(b, &args); err != nil {
		t.Fatalf("decode %s args: %v", id, err)
	}
	return args
}

// record returns the one log record with msg for node id and pid, failing
// the test when there is none or more than one.
func record(t *testing.T, logs *logRecords, msg, id string, pid int) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, r := range logs.find(t, msg) {
		if r["node"] == id && r["pid"] == float64(pid) {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %q records for %s pid %d, want 1", len(found), msg, id, pid)
	}
	return found[0]
}

// assertReaped fails unless pid no longer exists: reaped, not a zombie.
func assertReaped(t *testing.T, id string, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("%s pid %d after Run returned: kill(pid, 0) = %v, want ESRCH", id, pid, err)
	}
}

func TestCluster_Run(t *testing.T) {
	t.Parallel()

	t.Run("starts every node with its addresses and the full peer list", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, func(c *devcluster.Config) { c.ExtraArgs = []string{"--log-level", "debug"} })
		tc.start(t)
		tc.waitReady(t)

		base, dir := tc.cfg.PortBase, tc.cfg.Dir
		var peers []string
		for i := 1; i <= 3; i++ {
			peers = append(peers, "--peer", fmt.Sprintf("n%d,127.0.0.1:%d,127.0.0.1:%d", i, base+100+i, base+i))
		}
		for i := 1; i <= 3; i++ {
			id := fmt.Sprintf("n%d", i)
			want := []string{
				"node",
				"--id", id,
				"--dir", filepath.Join(dir, id),
				"--raft-addr", fmt.Sprintf("127.0.0.1:%d", base+100+i),
				"--api-addr", fmt.Sprintf("127.0.0.1:%d", base+i),
				"--bootstrap",
			}
			want = append(append(want, peers...), "--object-store", tc.ObjectStore(), "--log-level", "debug")
			if got := readArgs(t, dir, id); !reflect.DeepEqual(got, want) {
				t.Errorf("%s args:\n got %q\nwant %q", id, got, want)
			}
		}

		wantStore := fakes3.StoreURL(fmt.Sprintf("http://127.0.0.1:%d", base+devcluster.S3PortOffset), "graft", "")
		if got := tc.ObjectStore(); got != wantStore {
			t.Errorf("ObjectStore = %s, want %s", got, wantStore)
		}

		if err := tc.Run(context.Background()); !errors.Is(err, devcluster.ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}

		// stdout and stderr reach LogOutput prefixed, and node.log as is.
		pids := tc.pids(t)
		for _, id := range tc.NodeIDs() {
			lines := []string{
				fmt.Sprintf("fake node %s up pid=%d\n", id, pids[id]),
				fmt.Sprintf("fake node %s stderr\n", id),
			}
			eventually(t, id+" output copied", func() error {
				b, err := os.ReadFile(filepath.Join(dir, id, "node.log"))
				if err != nil {
					return err
				}
				for _, line := range lines {
					if !strings.Contains(tc.out.String(), id+" | "+line) {
						return fmt.Errorf("LogOutput lacks %q", id+" | "+line)
					}
					if !strings.Contains(string(b), line) {
						return fmt.Errorf("node.log lacks %q", line)
					}
				}
				if strings.Contains(string(b), " | ") {
					return fmt.Errorf("node.log has prefixed lines: %q", b)
				}
				return nil
			})
		}
		for line := range strings.Lines(tc.out.String()) {
			if !strings.HasPrefix(line, "n1 | ") && !strings.HasPrefix(line, "n2 | ") && !strings.HasPrefix(line, "n3 | ") {
				t.Errorf("LogOutput line %q has no node prefix", line)
			}
		}
	})

	t.Run("restarts a killed node and leaves the others running", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, nil)
		tc.start(t)
		tc.waitReady(t)
		before := tc.pids(t)
		old := before["n2"]

		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatalf("kill n2: %v", err)
		}
		eventually(t, "n2 restarted", func() error {
			if pid := tc.PID("n2"); pid == 0 || pid == old {
				return fmt.Errorf("PID(n2) = %d", pid)
			}
			return nil
		})
		tc.waitReady(t)
		after := tc.pids(t)
		if err := syscall.Kill(after["n2"], 0); err != nil {
			t.Errorf("new n2 pid %d: kill(pid, 0) = %v", after["n2"], err)
		}
		for _, id := range []string{"n1", "n3"} {
			if after[id] != before[id] {
				t.Errorf("%s pid changed from %d to %d; only n2 died", id, before[id], after[id])
			}
		}

		r := record(t, tc.logs, "node exited; restarting", "n2", old)
		if r["level"] != "WARN" || r["status"] != "signal: killed" || r["restart_in"] != float64(tc.cfg.RestartDelay) {
			t.Errorf("restart record = %v, want WARN, status \"signal: killed\", restart_in %d", r, tc.cfg.RestartDelay)
		}
		record(t, tc.logs, "node started", "n2", after["n2"])
		if got := len(tc.logs.find(t, "node exited; restarting")); got != 1 {
			t.Errorf("%d restart records, want 1", got)
		}
		// node.log is appended to across restarts.
		eventually(t, "both n2 runs in node.log", func() error {
			b, err := os.ReadFile(filepath.Join(tc.cfg.Dir, "n2", "node.log"))
			if err != nil {
				return err
			}
			for _, pid := range []int{old, after["n2"]} {
				if !strings.Contains(string(b), fmt.Sprintf("fake node n2 up pid=%d\n", pid)) {
					return fmt.Errorf("node.log lacks the start of pid %d: %q", pid, b)
				}
			}
			return nil
		})
	})

	t.Run("stops every node with SIGTERM when ctx is done", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, nil)
		tc.start(t)
		tc.waitReady(t)
		pids := tc.pids(t)

		if err := tc.stop(t); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		for id, pid := range pids {
			assertReaped(t, id, pid)
			if got := tc.PID(id); got != 0 {
				t.Errorf("PID(%s) = %d after Run returned, want 0", id, got)
			}
			if r := record(t, tc.logs, "node stopped", id, pid); r["status"] != "exit status 0" {
				t.Errorf("%s stopped with status %v, want \"exit status 0\"", id, r["status"])
			}
			// Output written while stopping is drained before Run returns.
			if line := id + " | fake node " + id + " stopping\n"; !strings.Contains(tc.out.String(), line) {
				t.Errorf("LogOutput lacks %q", line)
			}
		}
		if got := tc.logs.find(t, "node did not stop in time; killing it"); len(got) != 0 {
			t.Errorf("graceful nodes were killed: %v", got)
		}
		if got := tc.logs.find(t, "node exited; restarting"); len(got) != 0 {
			t.Errorf("nodes restarted during shutdown: %v", got)
		}
	})

	t.Run("kills a node that ignores SIGTERM after StopTimeout", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, func(c *devcluster.Config) {
			c.StopTimeout = 500 * time.Millisecond
			setMode(t, c, "n2", modeIgnoreTerm)
		})
		tc.start(t)
		tc.waitReady(t)
		pids := tc.pids(t)

		if err := tc.stop(t); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		r := record(t, tc.logs, "node did not stop in time; killing it", "n2", pids["n2"])
		if r["stop_timeout"] != float64(500*time.Millisecond) {
			t.Errorf("kill record = %v, want stop_timeout 500ms", r)
		}
		want := map[string]string{"n1": "exit status 0", "n2": "signal: killed", "n3": "exit status 0"}
		for id, pid := range pids {
			assertReaped(t, id, pid)
			if r := record(t, tc.logs, "node stopped", id, pid); r["status"] != want[id] {
				t.Errorf("%s stopped with status %v, want %q", id, r["status"], want[id])
			}
		}
		if got := len(tc.logs.find(t, "node did not stop in time; killing it")); got != 1 {
			t.Errorf("%d kill records, want 1 (n2 only)", got)
		}
	})

	t.Run("backs off a crash-looping node", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, func(c *devcluster.Config) {
			c.Nodes = 1
			c.ExtraArgs = []string{modeFlag, modeCrash}
			c.RestartDelay = 10 * time.Millisecond
			c.CrashLoopCount = 2
			c.MaxRestartDelay = 40 * time.Millisecond
		})
		tc.start(t)
		var recs []map[string]any
		eventually(t, "four restarts", func() error {
			if recs = tc.logs.find(t, "node exited; restarting"); len(recs) < 4 {
				return fmt.Errorf("%d restarts", len(recs))
			}
			return nil
		})
		if err := tc.stop(t); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		ms := float64(time.Millisecond)
		wantDelay := []float64{10 * ms, 20 * ms, 40 * ms, 40 * ms}
		for i, want := range wantDelay {
			r := recs[i]
			if r["quick_exits"] != float64(i+1) || r["restart_in"] != want || r["exit_code"] != float64(3) {
				t.Errorf("restart %d = %v, want quick_exits %d, restart_in %v, exit_code 3", i+1, r, i+1, time.Duration(want))
			}
		}
	})

	t.Run("fails without supervising when a node cannot start", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, func(c *devcluster.Config) {
			c.Binary = filepath.Join(c.Dir, "no-such-graft")
		})
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		err := tc.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "start n1") {
			t.Fatalf("Run = %v, want a start n1 error", err)
		}
		if _, serr := os.Stat(filepath.Join(tc.cfg.Dir, "n3", "node.log")); serr != nil {
			t.Errorf("node dirs not prepared before starting: %v", serr)
		}
		if got := tc.logs.find(t, "node started"); len(got) != 0 {
			t.Errorf("nodes started: %v", got)
		}
	})

	t.Run("returns at once for a done ctx", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := tc.Run(ctx); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if got := tc.logs.find(t, "node started"); len(got) != 0 {
			t.Errorf("nodes started: %v", got)
		}
	})
}

func TestCluster_WaitReady(t *testing.T) {
	t.Parallel()

	t.Run("waits until every node is ready", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, func(c *devcluster.Config) { setMode(t, c, "n3", modeNotReady) })
		tc.start(t)
		eventually(t, "n3 serving", func() error {
			if tc.PID("n3") == 0 {
				return errors.New("n3 not started")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err := tc.WaitReady(ctx)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "check n3 ready: status 503") {
				return fmt.Errorf("WaitReady = %v, want DeadlineExceeded and n3's 503", err)
			}
			return nil
		})

		setMode(t, &tc.cfg, "n3", "ready")
		tc.waitReady(t)
	})

	t.Run("succeeds when started before Run", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, nil)
		ready := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			ready <- tc.WaitReady(ctx)
		}()
		tc.start(t)
		if err := <-ready; err != nil {
			t.Errorf("WaitReady = %v, want nil", err)
		}
	})
}
