//go:build linux

package harness_test

import (
	"context"
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
	"time"

	"github.com/graft-cluster/graft/jepsen/harness"
)

// gone reports whether pid has exited. A zombie counts as gone: once its
// parent died, reaping it is up to init, which in some containers never
// does.
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

// groupGone reports whether no process is left in process group pgid.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func TestCluster_Stop_leavesNoProcess(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := harness.Start(ctx, cfg)
	if err != nil {
		dumpLogs(t, cfg.Dir)
		t.Fatal(err)
	}
	pids := map[string]int{"s3": c.PID(-1)}
	for i := range c.Nodes() {
		pids[c.NodeID(i)] = c.PID(i)
	}
	for name, pid := range pids {
		pgid, err := syscall.Getpgid(pid)
		if err != nil || pgid != pid || pgid == syscall.Getpgrp() {
			t.Errorf("%s (pid %d): pgid %d, %v; want its own group", name, pid, pgid, err)
		}
	}
	// A paused node must stop too.
	if err := c.Pause(1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	for name, pid := range pids {
		if !groupGone(pid) {
			t.Errorf("%s: process group %d still has processes after Stop", name, pid)
		}
	}
	for i := range c.Nodes() {
		if c.Running(i) {
			t.Errorf("node %d Running after Stop", i)
		}
	}
	if err := c.Restart(0); !errors.Is(err, harness.ErrStopped) {
		t.Errorf("Restart after Stop = %v, want ErrStopped", err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
	for _, e := range c.UnexpectedExits() {
		t.Errorf("unexpected exit: %+v", e)
	}
	checkNoRaces(t, c)
}

func TestCluster_leavesNoOrphansWhenKilled(t *testing.T) {
	cfg := testConfig(t) // skips under -short
	dir := cfg.Dir
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=cluster", helperDirEnv+"="+dir, helperBinEnv+"="+graftBin)
	out, err := os.Create(filepath.Join(dir, "helper.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	helper.Stdout, helper.Stderr = out, out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- helper.Wait() }()
	var pids []int
	t.Cleanup(func() {
		_ = helper.Process.Kill()
		<-exited
		for _, pid := range pids { // only if the test failed
			if !gone(pid) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "pids.json"))
		if err == nil {
			if err := json.Unmarshal(b, &pids); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("helper exited early (%v):\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("helper did not start its cluster in 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(pids) != 4 {
		t.Fatalf("helper pids = %v, want 3 nodes and the object store", pids)
	}
	for _, pid := range pids {
		if pid == 0 || gone(pid) {
			t.Fatalf("pid %d not running before the helper is killed", pid)
		}
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = <-exited
	exited <- err
	deadline = time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d outlived its harness by 10s", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fmt.Fprintln(out, "all gone")
}
