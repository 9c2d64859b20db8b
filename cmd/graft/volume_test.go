package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func TestFilePages(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 900) // 9000 bytes: 2 full pages + 808
	writes, err := filePages("f", data, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(writes) != 3 {
		t.Fatalf("%d pages, want 3", len(writes))
	}
	var got []byte
	for i, w := range writes {
		if w.Idx != volume.PageIdx(3+i) || len(w.Data) != volume.PageSize {
			t.Fatalf("write %d: page %d, %d bytes", i, w.Idx, len(w.Data))
		}
		got = append(got, w.Data...)
	}
	if !bytes.Equal(got[:len(data)], data) || !bytes.Equal(got[len(data):], make([]byte, 3*volume.PageSize-len(data))) {
		t.Fatal("pages are not the file followed by zeros")
	}
	if writes, err := filePages("f", make([]byte, volume.PageSize), 1); err != nil || len(writes) != 1 {
		t.Fatalf("exactly one page: %d pages, %v", len(writes), err)
	}
}

func TestFilePages_BadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		at   uint64
		want string
	}{
		{"empty", 0, 1, "--file f is empty"},
		{"at zero", 10, 0, "--at 0: want a page index in [1, 4294967295]"},
		{"at past the last index", 10, 1 << 32, "--at 4294967296"},
		{"runs past the last index", volume.PageSize + 1, volume.MaxPageIdx, "--file f: 4097 bytes need pages 4294967295-4294967296, past the last page index 4294967295"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := filePages("f", make([]byte, tc.size), tc.at)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCommitPages(t *testing.T) {
	fw, err := filePages("f", make([]byte, 2*volume.PageSize), 3)
	if err != nil {
		t.Fatal(err)
	}
	writes, err := commitPages([]string{"1=hello"}, "f", fw)
	if err != nil {
		t.Fatal(err)
	}
	var idxs []volume.PageIdx
	for _, w := range writes {
		idxs = append(idxs, w.Idx)
	}
	if len(idxs) != 3 || idxs[0] != 1 || idxs[1] != 3 || idxs[2] != 4 || !bytes.HasPrefix(writes[0].Data, []byte("hello\x00")) {
		t.Fatalf("pages %v", idxs)
	}
	for _, tc := range []struct {
		name  string
		pages []string
		want  string
	}{
		{"page inside the file", []string{"4=x"}, "page 4 is written twice: by --page 4=x and by --file f (pages 3-4)"},
		{"page given twice", []string{"1=a", "1=b"}, "page 1 is written twice: by --page 1=a and by --page 1=b"},
		{"page zero", []string{"0=a"}, `page "0=a": pages start at 1`},
		{"page too large", []string{"2=" + strings.Repeat("x", volume.PageSize+1)}, "page 2: 4097 bytes, more than a page (4096); write a larger file with --file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := commitPages(tc.pages, "f", fw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParsePageRange(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last uint32
		err         string
	}{
		{in: "3", first: 3, last: 3},
		{in: "3-5", first: 3, last: 5},
		{in: "1-4294967295", first: 1, last: 4294967295},
		{in: "0-2", err: "pages start at 1"},
		{in: "5-3", err: "the range ends before it starts"},
		{in: "3-", err: "want N or N-M"},
		{in: "a-b", err: "want N or N-M"},
		{in: "1-4294967296", err: "want N or N-M"},
	} {
		first, last, err := parsePageRange(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || first != tc.first || last != tc.last):
			t.Errorf("%q = %d, %d, %v; want %d, %d", tc.in, first, last, err, tc.first, tc.last)
		}
	}
}

// Bad flags are refused before any request (no cluster runs here).
func TestVolumeCommit_BadFlags(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vid := volume.MustNewID().String()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"volume", "commit", vid, "--at", "3"}, "--at needs --file"},
		{[]string{"volume", "commit", vid, "--file", filepath.Join(dir, "missing")}, "--file: open " + filepath.Join(dir, "missing")},
		{[]string{"volume", "commit", vid, "--file", empty, "--at", "2"}, "is empty: nothing to write"},
		{[]string{"volume", "read", vid, "--page", "1", "--pages", "1-2"}, "give --page or --pages, not both"},
		{[]string{"volume", "read", vid}, "--page (or --pages) is required"},
		{[]string{"volume", "read", vid, "--pages", "2-1"}, "the range ends before it starts"},
	} {
		err := run(context.Background(), append(tc.args, "--endpoint", "http://127.0.0.1:1"), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("graft %s: %v; want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestDefaultEndpoint(t *testing.T) {
	t.Setenv(EndpointEnv, "")
	if got := defaultEndpoint("http://a"); got != "http://a" {
		t.Errorf("unset: %q", got)
	}
	t.Setenv(EndpointEnv, "http://127.0.0.1:9001,http://127.0.0.1:9002")
	if got := defaultEndpoint("http://a"); got != "http://127.0.0.1:9001,http://127.0.0.1:9002" {
		t.Errorf("set: %q", got)
	}
}

// A file of many pages goes in with one commit and comes back, exactly,
// with one read that takes several chunks; pages around it read as zeros.
func TestVolume_FileRoundTrip(t *testing.T) {
	c := clustertest.Start(t, 3)
	c.WaitLeader()
	ep := strings.Join(c.Endpoints(), ",")
	ctx := t.Context()
	data := make([]byte, 200*volume.PageSize-100) // 200 pages, the last one short
	_, _ = rand.Read(data)
	f := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	vid := volume.MustNewID().String()
	var out bytes.Buffer
	if err := run(ctx, []string{"volume", "commit", vid, "--endpoint", ep, "--file", f, "--at", "2", "--page", "1=head"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if want := "committed " + vid + " lsn 1 page_count 201\n"; out.String() != want {
		t.Fatalf("commit printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := run(ctx, []string{"volume", "read", vid, "--endpoint", ep, "--pages", "1-" + strconv.Itoa(2*readChunk+10)}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, (2*readChunk+10)*volume.PageSize)
	copy(want, "head")
	copy(want[volume.PageSize:], data)
	if got := out.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes; want the %d of pages 1-%d, page 1 then the file, zero-padded", len(got), len(want), 2*readChunk+10)
	}
}
