package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/volume"
)

// TestProcesses_VolumeDir drives a local replica with `graft volume ...
// --dir` processes against three real node processes: pull moves no data,
// read fetches only what it reads (plus prefetch), the counters add up
// across processes, local writes push, a stale push is rejected and reset
// recovers, and present pages read with the cluster unreachable.
func TestProcesses_VolumeDir(t *testing.T) {
	dc := startCluster(t)
	ep := strings.Join(dc.Endpoints(), ",")
	dir := filepath.Join(t.TempDir(), "replica")
	vid := volume.MustNewID().String()

	graft := func(args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(graftBin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	must := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := graft(args...)
		if err != nil {
			t.Fatalf("graft %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
		}
		return out, errOut
	}
	local := func(sub string, args ...string) []string {
		return append([]string{"volume", sub, vid, "--dir", dir, "--endpoint", ep}, args...)
	}
	pageText := func(out string, idx int) string {
		t.Helper()
		if len(out) != volume.PageSize {
			t.Fatalf("read %d bytes, want one page", len(out))
		}
		return strings.TrimRight(out, "\x00")
	}
	type status struct {
		Snapshot struct {
			LocalLSN  uint64 `json:"local_lsn"`
			RemoteLSN uint64 `json:"remote_lsn"`
			PageCount uint32 `json:"page_count"`
		} `json:"snapshot"`
		Status      string `json:"status"`
		ClusterHead struct {
			LSN   uint64 `json:"lsn"`
			Error string `json:"error"`
		} `json:"cluster_head"`
		Present, Pending uint64
		Fetch            struct {
			Reads      uint64 `json:"reads"`
			RoundTrips uint64 `json:"round_trips"`
			Fetched    uint64 `json:"fetched"`
			Prefetched uint64 `json:"prefetched"`
		} `json:"fetch"`
	}
	statusOf := func(args ...string) status {
		t.Helper()
		out, _ := must(append(local("status", "--json"), args...)...)
		var s status
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("status --json: %v: %s", err, out)
		}
		return s
	}

	// 100 pages on the cluster, page i starting "page-i".
	var data []byte
	for i := 1; i <= 100; i++ {
		p := make([]byte, volume.PageSize)
		copy(p, fmt.Sprintf("page-%03d", i))
		data = append(data, p...)
	}
	f := filepath.Join(t.TempDir(), "pages.bin")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	must("volume", "commit", vid, "--endpoint", ep, "--file", f)

	// Pull: every page pending, none fetched.
	out, _ := must(local("pull")...)
	if want := "pulled " + vid + ": remote lsn 0 -> 1"; !strings.HasPrefix(out, want) || !strings.Contains(out, "100 pages pending, 0 present") {
		t.Fatalf("pull printed %q, want %q... 100 pages pending, 0 present", out, want)
	}

	// Read 10-12: 10 alone (no history yet), then 11 with 12 predicted.
	out, errOut := must(local("read", "--pages", "10-12")...)
	if len(out) != 3*volume.PageSize || pageText(out[:volume.PageSize], 10) != "page-010" || pageText(out[2*volume.PageSize:], 12) != "page-012" {
		t.Fatalf("read 10-12: %d bytes, %q...", len(out), out[:16])
	}
	if want := "read 3 pages: 3 fetched in 2 round trips (1 prefetched), 97 pages still pending\n"; errOut != want {
		t.Fatalf("read counters %q, want %q", errOut, want)
	}
	out, _ = must(local("read", "--page", "11")...) // present: no fetch, counted as a read
	if pageText(out, 11) != "page-011" {
		t.Fatalf("page 11: %q", pageText(out, 11))
	}
	s := statusOf()
	if s.Snapshot.RemoteLSN != 1 || s.ClusterHead.LSN != 1 || s.Status != "ok" || s.Present != 3 || s.Pending != 97 ||
		s.Fetch.Reads != 4 || s.Fetch.RoundTrips != 2 || s.Fetch.Fetched != 3 || s.Fetch.Prefetched != 1 {
		t.Fatalf("status after reading 10-12 and 11: %+v", s)
	}
	// --json: a pull with nothing new, and a read of a present page.
	out, _ = must(local("pull", "--json")...)
	var pulled struct {
		From     uint64 `json:"from_remote_lsn"`
		Snapshot struct {
			RemoteLSN uint64 `json:"remote_lsn"`
		} `json:"snapshot"`
		Pending uint64 `json:"pending"`
	}
	if err := json.Unmarshal([]byte(out), &pulled); err != nil || pulled.From != 1 || pulled.Snapshot.RemoteLSN != 1 || pulled.Pending != 97 {
		t.Fatalf("pull --json with nothing new: %v %s", err, out)
	}
	out, _ = must(local("read", "--page", "12", "--json")...)
	var read struct {
		Pages []struct {
			Idx  uint32 `json:"idx"`
			Data []byte `json:"data"`
		} `json:"pages"`
		Fetch struct {
			Reads      uint64 `json:"reads"`
			RoundTrips uint64 `json:"round_trips"`
		} `json:"fetch"`
	}
	if err := json.Unmarshal([]byte(out), &read); err != nil || len(read.Pages) != 1 || read.Pages[0].Idx != 12 ||
		pageText(string(read.Pages[0].Data), 12) != "page-012" || read.Fetch.Reads != 1 || read.Fetch.RoundTrips != 0 {
		t.Fatalf("read --json of present page 12: %v %.200s", err, out)
	}
	human, _ := must(local("status")...)
	for _, want := range []string{"status      ok", "remote lsn  1 (cluster head: 1)", "3 present, 97 pending", "5 reads, 2 misses, 2 round trips, 3 pages fetched, 1 prefetched"} {
		if !strings.Contains(human, want) {
			t.Fatalf("status printed:\n%s\nwant %q in it", human, want)
		}
	}

	// A local write reads back without a fetch and pushes as remote LSN 2.
	out, _ = must(local("write", "--page", "5=local-five")...)
	if !strings.HasPrefix(out, "committed locally "+vid) {
		t.Fatalf("write printed %q", out)
	}
	out, errOut = must(local("read", "--page", "5")...)
	if pageText(out, 5) != "local-five" || !strings.HasPrefix(errOut, "read 1 pages: 0 fetched in 0 round trips") {
		t.Fatalf("page 5 after a local write: %q, %q", pageText(out, 5), errOut)
	}
	out, _ = must(local("push")...)
	if want := "pushed " + vid + ": 1 pages as remote lsn 2\n"; out != want {
		t.Fatalf("push printed %q, want %q", out, want)
	}
	out, _ = must("volume", "read", vid, "--endpoint", ep, "--page", "5")
	if pageText(out, 5) != "local-five" {
		t.Fatalf("page 5 on the cluster after push: %q", pageText(out, 5))
	}

	// Another writer commits first: the local commit's push is rejected,
	// and reset adopts the remote head.
	must("volume", "commit", vid, "--endpoint", ep, "--page", "7=remote-seven")
	must(local("write", "--page", "8=local-eight")...)
	_, errOut, err := graft(local("push")...)
	if err == nil || !strings.Contains(errOut, "rejected") || !strings.Contains(errOut, "reset --dir") {
		t.Fatalf("stale push: %v, stderr %q; want a rejection naming reset --dir", err, errOut)
	}
	if s := statusOf(); s.Status != "rejected_commit" || s.ClusterHead.LSN != 3 {
		t.Fatalf("status after the rejected push: %+v", s)
	}
	out, _ = must(local("reset")...)
	if !strings.HasPrefix(out, "reset "+vid+" to remote lsn 3") {
		t.Fatalf("reset printed %q", out)
	}
	for idx, want := range map[string]string{"7": "remote-seven", "8": "page-008", "5": "local-five"} {
		out, _ = must(local("read", "--page", idx)...)
		if got := pageText(out, 0); got != want {
			t.Fatalf("page %s after reset: %q, want %q", idx, got, want)
		}
	}
	if s := statusOf(); s.Status != "ok" || s.Snapshot.RemoteLSN != 3 {
		t.Fatalf("status after reset: %+v", s)
	}

	// Cluster unreachable: present pages still read, status still answers.
	off := []string{"volume", "read", vid, "--dir", dir, "--endpoint", "http://127.0.0.1:1", "--page", "10"}
	out, _ = must(off...)
	if pageText(out, 10) != "page-010" {
		t.Fatalf("present page 10 offline: %q", pageText(out, 10))
	}
	human, _ = must("volume", "status", vid, "--dir", dir, "--endpoint", "http://127.0.0.1:1")
	if !strings.Contains(human, "cluster head: unknown (") {
		t.Fatalf("status offline:\n%s", human)
	}
	_, errOut, err = graft("volume", "read", vid, "--dir", dir, "--endpoint", "http://127.0.0.1:1", "--page", "50")
	if err == nil || !strings.Contains(errOut, "page 50") || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("pending page 50 offline: %v, stderr %q; want an error naming the page and the endpoint", err, errOut)
	}
}
