package main_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

// nodeProc is one `graft node` process the test runs itself.
type nodeProc struct {
	id, dir, api string
	args         []string
	cmd          *exec.Cmd
	done         chan error
	log          *os.File
}

func (p *nodeProc) start(t *testing.T, bin string) {
	t.Helper()
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.id, err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
}

// graftOut runs the graft CLI and returns its stdout, failing the test on
// a non-zero exit.
func graftOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(graftBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("graft %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// TestProcesses_RollingUpgrade runs the rolling upgrade `graft cluster
// --help` documents on three real node processes under a commit load: for
// each node, step-down, SIGTERM, start the "new" binary (a copy at another
// path) on the same flags and data, wait-ready. Every node must exit 0 on
// SIGTERM, run the new binary afterwards, and every acknowledged commit
// must be readable on every node with its bytes; no commit may fail for
// good (the client retries unknown outcomes with the same content).
func TestProcesses_RollingUpgrade(t *testing.T) {
	base := freePortBase(t)
	dir := t.TempDir()
	newBin := filepath.Join(dir, "graft-new")
	b, err := os.ReadFile(graftBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newBin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	var peers []string
	for i := 1; i <= 3; i++ {
		peers = append(peers, "--peer", fmt.Sprintf("n%d,127.0.0.1:%d,127.0.0.1:%d", i, base+100+i, base+i))
	}
	nodes := make([]*nodeProc, 3)
	var endpoints []string
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		p := &nodeProc{id: id, dir: filepath.Join(dir, id), api: fmt.Sprintf("http://127.0.0.1:%d", base+i+1)}
		p.args = append([]string{"node", "--id", id, "--dir", p.dir, "--bootstrap",
			"--raft-addr", fmt.Sprintf("127.0.0.1:%d", base+101+i), "--api-addr", fmt.Sprintf("127.0.0.1:%d", base+1+i),
			"--raft-heartbeat-timeout", "300ms", "--raft-election-timeout", "300ms"}, peers...)
		if p.log, err = os.Create(filepath.Join(dir, id+".log")); err != nil {
			t.Fatal(err)
		}
		p.start(t, graftBin)
		nodes[i] = p
		endpoints = append(endpoints, p.api)
	}
	t.Cleanup(func() {
		for _, p := range nodes {
			_ = p.cmd.Process.Kill()
			<-p.done
			p.log.Close()
			if t.Failed() {
				b, _ := os.ReadFile(p.log.Name())
				t.Logf("%s log (tail):\n%s", p.id, tail(string(b), 30))
			}
		}
	})
	all := strings.Join(endpoints, ",")
	for _, p := range nodes {
		graftOut(t, "cluster", "wait-ready", "--endpoint", p.api, "--timeout", "60s")
	}

	cl, err := client.New(endpoints, client.WithAttemptTimeout(2*time.Second), client.WithAttempts(30), client.WithBackoff(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var acks []acked
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			vid := volume.MustNewID()
			var base volume.LSN
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				data := make([]byte, volume.PageSize)
				binary.BigEndian.PutUint64(data, uint64(w))
				binary.BigEndian.PutUint64(data[8:], uint64(n))
				idx := volume.PageIdx(n%8 + 1)
				snap, err := cl.Commit(ctx, vid, base, 8, []volume.PageWrite{{Idx: idx, Data: data}})
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("worker %d commit %d on base %d: %v", w, n, base, err))
					mu.Unlock()
					return
				}
				acks = append(acks, acked{vid, snap.LSN, idx, data})
				mu.Unlock()
				base = snap.LSN
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acks) }
	waitMore := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d commits acknowledged, want %d", count(), n)
			}
			time.Sleep(20 * time.Millisecond) // polling the workers' progress
		}
	}
	waitMore(20)

	// The procedure, one node at a time, the leader included.
	for _, p := range nodes {
		out := graftOut(t, "cluster", "step-down", "--endpoint", all, p.id)
		t.Logf("step-down %s: %s", p.id, strings.TrimSpace(out))
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-p.done:
			if err != nil {
				t.Fatalf("%s after SIGTERM: %v (want exit status 0)", p.id, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still running 30s after SIGTERM", p.id)
		}
		p.start(t, newBin)
		out = graftOut(t, "cluster", "wait-ready", "--endpoint", p.api, "--timeout", "60s")
		t.Logf("wait-ready %s: %s", p.id, strings.TrimSpace(out))
		waitMore(count() + 10) // the cluster commits with the new node in it
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d commits failed for good during the rolling upgrade: %v", len(failures), failures)
	}
	for _, p := range nodes {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid))
		if err == nil && exe != newBin {
			t.Errorf("%s runs %s after the upgrade, want %s", p.id, exe, newBin)
		}
	}
	// Every acknowledged commit, on every node, at its LSN.
	for i, p := range nodes {
		direct, err := client.New([]string{p.api})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acks {
			_, pages, err := direct.ReadPages(ctx, a.vid, a.lsn, []volume.PageIdx{a.idx}, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: a.lsn})
			if err != nil {
				t.Fatalf("node %d: read %s@%d page %d: %v", i+1, a.vid, a.lsn, a.idx, err)
			}
			if !bytes.Equal(pages[0].Data, a.data) {
				t.Fatalf("node %d: %s@%d page %d differs from the acknowledged bytes", i+1, a.vid, a.lsn, a.idx)
			}
		}
	}
	t.Logf("%d commits acknowledged across the rolling upgrade, all read back from every node", len(acks))
}
