package main_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// graft runs the binary and returns its stdout, failing the test on error.
func graft(t *testing.T, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(graftBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("graft %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestProcesses_FlushStopReadFromBucket is the README's walk-through: with
// `graft dev` commit pages, flush, stop the whole cluster, then read the
// pages back from the bucket alone (the store served by `graft s3` over the
// same directory), at the head and at an older LSN.
func TestProcesses_FlushStopReadFromBucket(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	dev := startDev(t, "--dir", dir, "--port-base", strconv.Itoa(base))
	hint := dev.bannerLine(t, "graft volume read")
	storeURL := hint[strings.Index(hint, "'")+1 : strings.LastIndex(hint, "'")]
	ep := fmt.Sprintf("--endpoint=http://127.0.0.1:%d", base+2) // a follower or the leader: either works

	vid := strings.TrimSpace(string(graft(t, "volume", "create")))
	p1 := make([]byte, 4096)
	_, _ = rand.Read(p1)
	f := filepath.Join(dir, "p1.bin")
	if err := os.WriteFile(f, p1, 0o644); err != nil {
		t.Fatal(err)
	}
	graft(t, "volume", "commit", vid, ep, "--page", "1=@"+f, "--page", "2=first")
	graft(t, "volume", "commit", vid, ep, "--page", "2=second")
	if out := graft(t, "cluster", "flush", ep); !bytes.Contains(out, []byte("flushed")) {
		t.Fatalf("cluster flush said %q", out)
	}
	dev.interrupt(t)

	s3 := exec.Command(graftBin, "s3", "--dir", filepath.Join(dir, "s3"), "--addr", fmt.Sprintf("127.0.0.1:%d", base+300))
	out, err := s3.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Process.Kill(); _ = s3.Wait() })
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatal("graft s3 did not start")
		}
	}

	read := func(page, lsn string) []byte {
		args := []string{"volume", "read", vid, "--page", page, "--object-store", storeURL}
		if lsn != "" {
			args = append(args, "--lsn", lsn)
		}
		return graft(t, args...)
	}
	if got := read("1", ""); !bytes.Equal(got, p1) {
		t.Fatalf("page 1 from the bucket differs from what was committed (%d bytes)", len(got))
	}
	if got := read("2", ""); !bytes.HasPrefix(got, []byte("second\x00")) || len(got) != 4096 {
		t.Fatalf("page 2 at the head = %q...", got[:min(len(got), 16)])
	}
	if got := read("2", "1"); !bytes.HasPrefix(got, []byte("first\x00")) {
		t.Fatalf("page 2 at lsn 1 = %q...", got[:min(len(got), 16)])
	}
	if got := read("3", ""); !bytes.Equal(got, make([]byte, 4096)) {
		t.Fatal("page 3, never written, is not zeros")
	}
	// What the bucket holds of the volume, from the bucket alone.
	info := string(graft(t, "volume", "info", vid, "--object-store", storeURL, "--json"))
	for _, want := range []string{`"flushed_lsn": 2`, `"oldest_readable_lsn": 1`, `"first_record_lsn": 1`} {
		if !strings.Contains(info, want) {
			t.Fatalf("volume info --object-store lacks %s:\n%s", want, info)
		}
	}
}
