//go:build linux

package devcluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// gone reports whether pid has exited. A zombie counts as gone: once the
// supervisor dies, reaping its orphans is up to init, which in some
// containers never does it.
func gone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// Format: pid (comm) state ...; comm may contain spaces and parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func TestCluster_Run_leavesNoOrphansWhenSupervisorIsKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sup := exec.Command(os.Args[0])
	sup.Env = append(os.Environ(),
		helperEnv+"=supervisor",
		envDir+"="+dir,
		envPortBase+"="+strconv.Itoa(freePortBase(t, 3)),
	)
	var out syncBuffer
	sup.Stdout, sup.Stderr = &out, &out
	if err := sup.Start(); err != nil {
		t.Fatalf("start supervisor: %v", err)
	}
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Wait() }()
	var pids map[string]int
	t.Cleanup(func() {
		_ = sup.Process.Kill()
		<-supDone
		for _, pid := range pids { // only if the test failed
			if !gone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	eventually(t, "supervisor ready", func() error {
		b, err := os.ReadFile(filepath.Join(dir, "pids.json"))
		if err != nil {
			select {
			case err := <-supDone:
				supDone <- err
				t.Fatalf("supervisor exited early (%v):\n%s", err, out.String())
			default:
			}
			return fmt.Errorf("%w; supervisor output:\n%s", err, out.String())
		}
		return json.Unmarshal(b, &pids)
	})
	if len(pids) != 3 {
		t.Fatalf("pids = %v, want 3 nodes", pids)
	}
	for id, pid := range pids {
		if gone(pid) {
			t.Fatalf("%s (pid %d) is not running before the supervisor is killed", id, pid)
		}
	}

	if err := sup.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill supervisor: %v", err)
	}
	err := <-supDone
	supDone <- err
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("supervisor wait = %v, want killed", err)
	}
	for id, pid := range pids {
		eventually(t, id+" gone", func() error {
			if !gone(pid) {
				return fmt.Errorf("pid %d still running", pid)
			}
			return nil
		})
	}
}
