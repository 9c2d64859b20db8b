package segment_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const goldenPath = "testdata/segment_v1.golden"

// goldenVersions are the page versions of testdata/segment_v1.golden: pages
// 1, 2 and 7 of testVID, page 2 in two versions, page 7 all zero. They are
// listed out of index order, so the golden file also pins Encode's sort.
func goldenVersions() []version {
	return []version{
		{idx: 7, lsn: 11, page: volume.ZeroPage()},
		{idx: 2, lsn: 11, page: patternPage(2, 11)},
		{idx: 1, lsn: 10, page: patternPage(1, 10)},
		{idx: 2, lsn: 10, page: patternPage(2, 10)},
	}
}

func readGolden(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(goldenPath))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	got := build(t, testVID, goldenVersions())
	if *update {
		if err := os.WriteFile(filepath.FromSlash(goldenPath), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readGolden(t)
	if !bytes.Equal(got, want) {
		at := 0
		for at < min(len(got), len(want)) && got[at] == want[at] {
			at++
		}
		t.Fatalf("Encode = %d bytes, golden %d bytes; first difference at offset %d (run go test ./segment -update if the change is intended and the format version is bumped)", len(got), len(want), at)
	}

	f, ix, err := segment.Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	wantFooter := segment.Footer{VID: testVID, Count: 4, MinLSN: 10, MaxLSN: 11, IndexCRC: crc32c(want[4*4096 : 4*4096+4*16])}
	if f != wantFooter {
		t.Errorf("footer = %+v, want %+v", f, wantFooter)
	}
	wantIdx := []struct {
		idx volume.PageIdx
		lsn volume.LSN
	}{{1, 10}, {2, 10}, {2, 11}, {7, 11}}
	entries := ix.Entries()
	if len(entries) != len(wantIdx) {
		t.Fatalf("%d entries, want %d", len(entries), len(wantIdx))
	}
	for i, e := range entries {
		if e.Idx != wantIdx[i].idx || e.LSN != wantIdx[i].lsn {
			t.Errorf("entry %d = (idx %d, lsn %d), want (idx %d, lsn %d)", i, e.Idx, e.LSN, wantIdx[i].idx, wantIdx[i].lsn)
		}
	}

	lookups := []struct {
		idx    volume.PageIdx
		at     volume.LSN
		wantI  int
		wantOK bool
		page   []byte
	}{
		{idx: 2, at: 9, wantI: -1},
		{idx: 2, at: 10, wantI: 1, wantOK: true, page: patternPage(2, 10)},
		{idx: 2, at: 11, wantI: 2, wantOK: true, page: patternPage(2, 11)},
		{idx: 2, at: 1000, wantI: 2, wantOK: true, page: patternPage(2, 11)},
		{idx: 7, at: 11, wantI: 3, wantOK: true, page: volume.ZeroPage()},
		{idx: 7, at: 10, wantI: -1},
		{idx: 3, at: 11, wantI: -1},
	}
	for _, l := range lookups {
		i, e, ok := ix.Lookup(l.idx, l.at)
		if i != l.wantI || ok != l.wantOK {
			t.Errorf("Lookup(%d, %d) = %d, %v; want %d, %v", l.idx, l.at, i, ok, l.wantI, l.wantOK)
			continue
		}
		if !ok {
			continue
		}
		off, n := segment.PageRange(i)
		if err := segment.VerifyPage(e, want[off:off+n]); err != nil {
			t.Errorf("Lookup(%d, %d): %v", l.idx, l.at, err)
		}
		if !bytes.Equal(want[off:off+n], l.page) {
			t.Errorf("Lookup(%d, %d): wrong page bytes", l.idx, l.at)
		}
	}
}

// TestGolden_Layout reads the golden segment by hand at the offsets doc.go
// documents, independently of the decoder.
func TestGolden_Layout(t *testing.T) {
	b := readGolden(t)
	const n = 4
	if len(b) != n*4096+n*16+64 {
		t.Fatalf("golden is %d bytes, want %d", len(b), n*4096+n*16+64)
	}
	pages, index, footer := b[:n*4096], b[n*4096:n*4096+n*16], b[n*4096+n*16:]
	be := binary.BigEndian

	checks := []struct {
		name      string
		got, want any
	}{
		{"magic", string(footer[0:8]), "GRFTSEG1"},
		{"version", be.Uint16(footer[8:]), uint16(1)},
		{"flags", be.Uint16(footer[10:]), uint16(0)},
		{"vid", volume.ID(footer[12:28]), testVID},
		{"count", be.Uint32(footer[28:]), uint32(n)},
		{"min_lsn", be.Uint64(footer[32:]), uint64(10)},
		{"max_lsn", be.Uint64(footer[40:]), uint64(11)},
		{"index_crc", be.Uint32(footer[48:]), crc32c(index)},
		{"reserved", be.Uint64(footer[52:]), uint64(0)},
		{"footer_crc", be.Uint32(footer[60:]), crc32c(footer[:60])},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("footer %s = %v, want %v", c.name, c.got, c.want)
		}
	}

	sorted := []version{
		{1, 10, patternPage(1, 10)},
		{2, 10, patternPage(2, 10)},
		{2, 11, patternPage(2, 11)},
		{7, 11, volume.ZeroPage()},
	}
	for i, v := range sorted {
		e := index[i*16 : (i+1)*16]
		page := pages[i*4096 : (i+1)*4096]
		if got := be.Uint32(e[0:]); got != uint32(v.idx) {
			t.Errorf("entry %d page_idx = %d, want %d", i, got, v.idx)
		}
		if got := be.Uint64(e[4:]); got != uint64(v.lsn) {
			t.Errorf("entry %d lsn = %d, want %d", i, got, v.lsn)
		}
		if got := be.Uint32(e[12:]); got != crc32c(v.page) {
			t.Errorf("entry %d crc = %08x, want %08x", i, got, crc32c(v.page))
		}
		if !bytes.Equal(page, v.page) {
			t.Errorf("page %d bytes differ", i)
		}
	}
}

const recordGoldenPath = "testdata/record-v1.golden"

func TestRecordGolden(t *testing.T) {
	r := goldenRecord()
	got := encodeRecord(t, r)
	path := filepath.FromSlash(recordGoldenPath)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		at := 0
		for at < min(len(got), len(want)) && got[at] == want[at] {
			at++
		}
		t.Fatalf("AppendBinary = %d bytes, golden %d bytes; first difference at offset %d (run go test ./segment -update if the change is intended and the format version is bumped)", len(got), len(want), at)
	}

	back, err := segment.DecodeRecord(want)
	if err != nil {
		t.Fatal(err)
	}
	checkRecordEqual(t, back, r)
	if g, want := back.Graft().Len(), 3+101+5000+1; g != want { // page 2 twice
		t.Errorf("Graft().Len() = %d, want %d", g, want)
	}
}

// TestRecordGolden_Layout checks the golden log record against the
// independent writer of helpers_test.go and reads its fields by hand at the
// offsets doc.go documents.
func TestRecordGolden_Layout(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(recordGoldenPath))
	if err != nil {
		t.Fatal(err)
	}
	if want := rawOf(t, goldenRecord()).bytes(); !bytes.Equal(b, want) {
		t.Fatalf("golden log record differs from the reference writer's %d bytes", len(want))
	}
	be := binary.BigEndian
	g0 := graftBytes(t, 1, 2, 3)
	c1 := 64 + 56 + len(g0) // the second commit
	checks := []struct {
		name      string
		got, want any
	}{
		{"magic", string(b[0:8]), "GRFTLOG1"},
		{"version", be.Uint16(b[8:]), uint16(1)},
		{"flags", be.Uint16(b[10:]), uint16(0)},
		{"vid", volume.ID(b[12:28]), testVID},
		{"from", be.Uint64(b[28:]), uint64(10)},
		{"to", be.Uint64(b[36:]), uint64(13)},
		{"segment", segment.ID(b[44:60]), testSID},
		{"count", be.Uint32(b[60:]), uint32(4)},
		{"commits[0] lsn", be.Uint64(b[64:]), uint64(10)},
		{"commits[0] page_count", be.Uint32(b[72:]), uint32(8)},
		{"commits[0] time_unix_ms", int64(be.Uint64(b[76:])), int64(1_700_000_000_010)},
		{"commits[0] hash", volume.Hash(b[84:116]), testHash(10)},
		{"commits[0] graft_len", be.Uint32(b[116:]), uint32(len(g0))},
		{"commits[0] graft", string(b[120 : 120+len(g0)]), string(g0)},
		{"commits[1] lsn", be.Uint64(b[c1:]), uint64(11)},
		{"commits[1] page_count", be.Uint32(b[c1+8:]), uint32(200)},
		{"commits[1] graft", string(b[c1+56 : c1+56+int(be.Uint32(b[c1+52:]))]), string(graftBytes(t))},
		{"crc", be.Uint32(b[len(b)-4:]), crc32c(b[:len(b)-4])},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
