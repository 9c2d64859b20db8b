package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// devProcess is a running `graft dev`.
type devProcess struct {
	cmd    *exec.Cmd
	banner []string         // stdout lines up to "Ctrl-C stops the cluster."
	stderr *strings.Builder // read only after done
	done   chan error       // Wait's result, put back by each reader
}

// startDev runs `graft dev ARGS...` and waits for its ready banner; the
// test's cleanup kills it if it still runs.
func startDev(t *testing.T, args ...string) *devProcess {
	t.Helper()
	p := &devProcess{
		cmd:    exec.Command(graftBin, append([]string{"dev"}, args...)...),
		stderr: &strings.Builder{},
		done:   make(chan error, 1),
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close() // the child has its own copy
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		_ = r.Close()
		if t.Failed() {
			t.Logf("graft dev stderr (tail):\n%s", tail(p.stderr.String(), 60))
		}
	})

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(90 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("graft dev closed stdout before its banner; got %q", p.banner)
			}
			p.banner = append(p.banner, line)
			if line == "Ctrl-C stops the cluster." {
				go func() { // keep draining, so the process never blocks on stdout
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			t.Fatalf("no ready banner from graft dev after 90s; got %q", p.banner)
		}
	}
}

// interrupt sends SIGINT, as Ctrl-C does, and waits for a clean exit.
func (p *devProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("interrupt graft dev: %v", err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("graft dev after SIGINT: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("graft dev still running 60s after SIGINT")
	}
}

// bannerLine returns the banner's line that starts with prefix.
func (p *devProcess) bannerLine(t *testing.T, prefix string) string {
	t.Helper()
	for _, l := range p.banner {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return strings.TrimSpace(l)
		}
	}
	t.Fatalf("banner has no line starting with %q:\n%s", prefix, strings.Join(p.banner, "\n"))
	return ""
}

func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// TestProcesses_Dev runs `graft dev` as a user does: the nodes start with
// the embedded S3 server's URL, the server answers plain HTTP and the S3
// client, Ctrl-C stops everything, and the objects stay in DIR/s3. With
// --object-store no embedded server runs.
func TestProcesses_Dev(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	s3Port := base + 300
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", s3Port)

	dev := startDev(t, "--dir", dir, "--port-base", strconv.Itoa(base))
	want := fmt.Sprintf("s3  %s  bucket graft  (data: %s)", endpoint, filepath.Join(dir, "s3"))
	if got := dev.bannerLine(t, "s3 "); got != want {
		t.Errorf("banner s3 line = %q, want %q", got, want)
	}
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", base)
	if got, want := dev.bannerLine(t, "edge "), "edge  "+edgeURL+"  "; !strings.HasPrefix(got, want) {
		t.Errorf("banner edge line = %q, want it to start with %q", got, want)
	}
	checkDevEdge(t, edgeURL, fmt.Sprintf("http://127.0.0.1:%d", base+1))
	if got := dev.bannerLine(t, "auth:"); !strings.HasPrefix(got, "auth: off") {
		t.Errorf("banner auth line = %q, want it to say auth is off", got)
	}
	hint := dev.bannerLine(t, "graft volume read")
	i, j := strings.Index(hint, "'"), strings.LastIndex(hint, "'")
	if i < 0 || j <= i {
		t.Fatalf("hint %q has no quoted object store URL", hint)
	}
	storeURL := hint[i+1 : j]

	resp, err := http.Get(endpoint + "/graft?list-type=2")
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<Name>graft</Name>") {
		t.Errorf("ListObjectsV2 = %s %s", resp.Status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := objstore.Open(ctx, storeURL)
	if err != nil {
		t.Fatalf("open %s: %v", storeURL, err)
	}
	defer st.Close()
	if err := st.PutIfAbsent(ctx, "dev-test", []byte("kept")); err != nil {
		t.Fatalf("PutIfAbsent: %v", err)
	}
	// Every node runs with the store's URL.
	for i := 1; i <= 3; i++ {
		log, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("n%d", i), "node.log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(log), "flag provided but not defined") {
			t.Errorf("n%d rejected a flag:\n%s", i, tail(string(log), 10))
		}
	}

	dev.interrupt(t)
	for _, port := range []int{base, base + 1, base + 2, base + 3, s3Port} {
		if portOpen(port) {
			t.Errorf("port %d still open after graft dev exited", port)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "s3", "fakes3.db")); err != nil {
		t.Errorf("embedded S3 data: %v", err)
	}

	// The objects survive a restart; --object-store replaces the server.
	dev = startDev(t, "--dir", dir, "--port-base", strconv.Itoa(base))
	if got, err := st.Get(ctx, "dev-test"); err != nil || string(got) != "kept" {
		t.Errorf("Get after restart = %q, %v; want \"kept\"", got, err)
	}
	dev.interrupt(t)

	ext := "file://" + filepath.Join(dir, "ext")
	dev = startDev(t, "--dir", dir, "--port-base", strconv.Itoa(base), "--object-store", ext)
	if got := dev.bannerLine(t, "object store"); got != "object store  "+ext {
		t.Errorf("banner object store line = %q, want %q", got, "object store  "+ext)
	}
	if portOpen(s3Port) {
		t.Errorf("embedded S3 server runs although --object-store is set")
	}
	dev.interrupt(t)
}

// A taken S3 port fails `graft dev` at once, with the address in the error.
func TestProcesses_DevS3PortTaken(t *testing.T) {
	base := freePortBase(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+300)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Well before the 60s readiness wait would end: it must not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, graftBin, "dev", "--dir", t.TempDir(), "--port-base", strconv.Itoa(base))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("graft dev = %v, want exit status 1; output:\n%s", err, out.String())
	}
	if want := fmt.Sprintf("start embedded s3 server: listen tcp 127.0.0.1:%d", base+300); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

// checkDevEdge commits through graft dev's edge, flushes, and reads the
// pages back through it until one comes from the bucket; every read equals
// the node's answer, and /metrics counts the sources.
func checkDevEdge(t *testing.T, edgeURL, nodeURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	viaEdge, err := client.New([]string{edgeURL})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.New([]string{nodeURL})
	if err != nil {
		t.Fatal(err)
	}
	vid := volume.MustNewID()
	const n = 40
	var w []volume.PageWrite
	for i := 1; i <= n; i++ {
		w = append(w, volume.PageWrite{Idx: volume.PageIdx(i), Data: bytes.Repeat([]byte{byte(i)}, volume.PageSize)})
	}
	snap, err := viaEdge.Commit(ctx, vid, 0, n, w)
	if err != nil {
		t.Fatalf("commit through the edge: %v", err)
	}
	if err := direct.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for i := 1; ; i++ {
		if i > n {
			t.Fatalf("no page of a flushed snapshot came from the bucket:\n%s", edgeMetrics(t, edgeURL))
		}
		idx := []volume.PageIdx{volume.PageIdx(i)}
		_, got, err := viaEdge.ReadPages(ctx, vid, snap.LSN, idx, client.ReadOptions{})
		if err != nil {
			t.Fatalf("read through the edge: %v", err)
		}
		_, want, err := direct.ReadPages(ctx, vid, snap.LSN, idx, client.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].LSN != want[0].LSN || !bytes.Equal(got[0].Data, want[0].Data) {
			t.Fatalf("page %d through the edge: version %d, node %d", i, got[0].LSN, want[0].LSN)
		}
		if bucketServed.MatchString(edgeMetrics(t, edgeURL)) {
			return
		}
		time.Sleep(50 * time.Millisecond) // the edge lists the bucket in the background
	}
}

var bucketServed = regexp.MustCompile(`(?m)^graft_edge_pages_total\{source="bucket"\} [1-9]`)

func edgeMetrics(t *testing.T, edgeURL string) string {
	t.Helper()
	resp, err := http.Get(edgeURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
