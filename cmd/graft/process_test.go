package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/devcluster"
	"github.com/graft-cluster/graft/volume"
)

var graftBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "graft-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	graftBin = filepath.Join(dir, "graft")
	build := exec.Command("go", "build", "-race", "-o", graftBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build graft:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePortBase finds a base whose API (base+1..3), Raft (base+101..103)
// and embedded S3 (base+300) ports are free right now.
func freePortBase(t *testing.T) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(20000)
		ok := true
		var lns []net.Listener
		for _, off := range []int{devcluster.EdgePortOffset, 1, 2, 3, 101, 102, 103, devcluster.S3PortOffset} {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// startCluster runs three real `graft node` processes under the dev
// supervisor, which restarts a killed node after RestartDelay.
func startCluster(t *testing.T) *devcluster.Cluster {
	t.Helper()
	cfg := devcluster.DefaultConfig()
	cfg.Binary = graftBin
	cfg.Dir = t.TempDir()
	cfg.PortBase = freePortBase(t)
	cfg.RestartDelay = 500 * time.Millisecond
	cfg.StopTimeout = 10 * time.Second
	logs, err := os.Create(filepath.Join(cfg.Dir, "nodes.log"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogOutput = logs
	dc, err := devcluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervisor: %v", err)
		}
		logs.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("node logs (tail):\n%s", tail(string(b), 80))
		}
	})
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	if err := dc.WaitReady(rctx); err != nil {
		t.Fatalf("cluster not ready: %v", err)
	}
	return dc
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type acked struct {
	vid  volume.ID
	lsn  volume.LSN
	idx  volume.PageIdx
	data []byte
}

// TestProcesses_KillLeaderDuringCommits SIGKILLs the leader process while
// clients commit, and proves every acknowledged commit is readable
// afterwards, at its LSN, with the same bytes, on every node.
func TestProcesses_KillLeaderDuringCommits(t *testing.T) {
	dc := startCluster(t)
	cl, err := client.New(dc.Endpoints(), client.WithAttemptTimeout(2*time.Second), client.WithAttempts(20))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var acks []acked
	afterKill := 0
	killed := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				idx := volume.PageIdx(n%16 + 1)
				snap, err := cl.Commit(ctx, vid, base, 16, []volume.PageWrite{{Idx: idx, Data: data}})
				if err != nil {
					t.Logf("worker %d: commit on base %d: %v", w, base, err)
					// Unknown outcome even after retries: resync on the head.
					head, herr := cl.Snapshot(ctx, vid, 0, client.ReadOptions{})
					if herr == nil {
						base = head.LSN
					}
					continue
				}
				if snap.LSN != base+1 {
					t.Errorf("commit on base %d acked at lsn %d", base, snap.LSN)
				}
				base = snap.LSN
				mu.Lock()
				acks = append(acks, acked{vid, snap.LSN, idx, data})
				select {
				case <-killed:
					afterKill++
				default:
				}
				mu.Unlock()
			}
		}()
	}

	waitAcks := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := len(acks)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d acks, want %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcks(200)
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := st.GetLeaderId()
	pid := dc.PID(leader)
	if pid == 0 {
		t.Fatalf("no pid for leader %q", leader)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(killed)
	t.Logf("SIGKILLed leader %s (pid %d)", leader, pid)
	mu.Lock()
	before := len(acks)
	mu.Unlock()
	waitAcks(before + 200)
	close(stop)
	wg.Wait()
	if afterKill == 0 {
		t.Fatal("no commit was acknowledged after the leader was killed")
	}

	// The killed node comes back under the supervisor; then every node must
	// serve every acknowledged commit.
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := dc.WaitReady(rctx); err != nil {
		t.Fatal(err)
	}
	heads := map[volume.ID]volume.LSN{}
	for _, a := range acks {
		heads[a.vid] = max(heads[a.vid], a.lsn)
	}
	for i, ep := range dc.Endpoints() {
		nc, err := client.New([]string{ep}, client.WithAttempts(20))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acks {
			ro := client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: heads[a.vid]}
			_, pages, err := nc.ReadPages(ctx, a.vid, a.lsn, []volume.PageIdx{a.idx}, ro)
			if err != nil {
				t.Fatalf("node %d: read %s@%d: %v", i, a.vid, a.lsn, err)
			}
			if pages[0].LSN != a.lsn || !bytes.Equal(pages[0].Data, a.data) {
				t.Fatalf("node %d: acked commit %s@%d page %d lost: got version %d", i, a.vid, a.lsn, a.idx, pages[0].LSN)
			}
		}
	}
	// No commit was applied twice: walk each chain and check that the
	// sequence numbers the writer put in its pages strictly increase, so a
	// retried commit never landed at a second LSN.
	for vid, head := range heads {
		_, commits, more, err := cl.PullCommits(ctx, vid, 0, 0, 0, client.ReadOptions{})
		if err != nil || more {
			t.Fatalf("pull commits of %s: more=%v %v", vid, more, err)
		}
		if volume.LSN(len(commits)) < head {
			t.Fatalf("%s: %d commits, acked up to lsn %d", vid, len(commits), head)
		}
		last := int64(-1)
		for i, ci := range commits {
			if ci.LSN != volume.LSN(i+1) || ci.Graft.Len() != 1 {
				t.Fatalf("%s: commit %d is lsn %d with %d pages", vid, i, ci.LSN, ci.Graft.Len())
			}
			_, pages, err := cl.ReadPages(ctx, vid, ci.LSN, ci.Graft.Slice(), client.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n := int64(binary.BigEndian.Uint64(pages[0].Data[8:]))
			if n <= last {
				t.Fatalf("%s: lsn %d carries write #%d after #%d: a commit was applied twice", vid, ci.LSN, n, last)
			}
			last = n
		}
	}
	t.Logf("%d acknowledged commits (%d after the kill) verified on 3 nodes", len(acks), afterKill)
}

// TestProcesses_ConnectJSON drives the wire contract the way curl does:
// Connect's JSON over plain HTTP/1.1 POST, against a follower.
func TestProcesses_ConnectJSON(t *testing.T) {
	dc := startCluster(t)
	eps := dc.Endpoints()
	post := func(ep, method string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(ep+"/graft.v1.VolumeService/"+method, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %s", method, raw)
		}
		return resp.StatusCode, out
	}
	// Find a follower to send to.
	resp, err := http.Post(eps[0]+"/graft.v1.ClusterService/Status", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		LeaderID string `json:"leaderId"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	var ep string
	for i, id := range dc.NodeIDs() {
		if id != st.LeaderID {
			ep = eps[i]
		}
	}
	vid := volume.MustNewID().String()
	pg := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), volume.PageSize))
	commit := map[string]any{"vid": vid, "baseLsn": "0", "pageCount": 1, "pages": []any{map[string]any{"idx": 1, "data": pg}}}

	code, out := post(ep, "Commit", commit)
	if code != 200 || out["snapshot"].(map[string]any)["lsn"] != "1" {
		t.Fatalf("commit on follower: %d %v", code, out)
	}
	code, out = post(ep, "Commit", commit)
	if code != 200 || out["snapshot"].(map[string]any)["lsn"] != "1" {
		t.Fatalf("identical retry: %d %v", code, out)
	}
	stale := map[string]any{"vid": vid, "baseLsn": "0", "pageCount": 1, "pages": []any{map[string]any{"idx": 1, "data": base64.StdEncoding.EncodeToString(make([]byte, volume.PageSize))}}}
	code, out = post(ep, "Commit", stale)
	if code != 409 || out["code"] != "aborted" {
		t.Fatalf("stale base: %d %v", code, out)
	}
	short := map[string]any{"vid": vid, "baseLsn": "1", "pageCount": 1, "pages": []any{map[string]any{"idx": 1, "data": base64.StdEncoding.EncodeToString(make([]byte, 100))}}}
	code, out = post(ep, "Commit", short)
	if code != 400 || out["code"] != "invalid_argument" || !strings.Contains(fmt.Sprint(out["message"]), "100 bytes") {
		t.Fatalf("100-byte page: %d %v", code, out)
	}
	code, out = post(ep, "ReadPages", map[string]any{"vid": vid, "lsn": "1", "pages": []int{1, 2}})
	pages, _ := out["pages"].([]any)
	if code != 200 || len(pages) != 2 || pages[0].(map[string]any)["data"] != pg || pages[0].(map[string]any)["lsn"] != "1" {
		t.Fatalf("read pages: %d %v", code, out)
	}
}
