package volume_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/graft-cluster/graft/volume"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// goldenCommit is the fixed commit whose hash is pinned in
// testdata/commit_hash.golden.
func goldenCommit(t testing.TB) (volume.ID, volume.LSN, uint32, []volume.PageWrite) {
	t.Helper()
	vid, err := volume.IDFromBytes([]byte{0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	if err != nil {
		t.Fatal(err)
	}
	counting := make([]byte, volume.PageSize)
	for i := range counting {
		counting[i] = byte(i % 251)
	}
	pages := []volume.PageWrite{
		page(1, 0x01),
		{Idx: 7, Data: counting},
		{Idx: 100, Data: volume.ZeroPage()},
	}
	return vid, 42, 100, pages
}

// refCommitHash builds the whole hash input in memory and hashes it in one
// call, as an independent statement of the layout.
func refCommitHash(vid volume.ID, lsn volume.LSN, pageCount uint32, pages []volume.PageWrite) volume.Hash {
	var buf bytes.Buffer
	buf.WriteString("graft.commit.v1\x00")
	buf.Write(vid[:])
	buf.Write(binary.BigEndian.AppendUint64(nil, uint64(lsn)))
	buf.Write(binary.BigEndian.AppendUint32(nil, pageCount))
	for _, p := range pages {
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(p.Idx)))
		buf.Write(p.Data)
	}
	return blake3.Sum256(buf.Bytes())
}

func TestCommitHash_Golden(t *testing.T) {
	vid, lsn, pageCount, pages := goldenCommit(t)
	got := volume.CommitHash(vid, lsn, pageCount, pages)

	if ref := refCommitHash(vid, lsn, pageCount, pages); got != ref {
		t.Fatalf("CommitHash = %s, reference layout hashes to %s", got, ref)
	}

	path := filepath.Join("testdata", "commit_hash.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got.String()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != strings.TrimSpace(string(want)) {
		t.Fatalf("CommitHash = %s, golden %s", got, strings.TrimSpace(string(want)))
	}
}

func TestCommitHash_EveryFieldMatters(t *testing.T) {
	vid, lsn, pageCount, pages := goldenCommit(t)
	base := volume.CommitHash(vid, lsn, pageCount, pages)

	clonePages := func() []volume.PageWrite {
		out := make([]volume.PageWrite, len(pages))
		for i, p := range pages {
			out[i] = volume.PageWrite{Idx: p.Idx, Data: bytes.Clone(p.Data)}
		}
		return out
	}
	otherVID := vid
	otherVID[15] ^= 1

	tests := []struct {
		name   string
		mutate func(*volume.ID, *volume.LSN, *uint32, *[]volume.PageWrite)
	}{
		{"vid last byte", func(v *volume.ID, _ *volume.LSN, _ *uint32, _ *[]volume.PageWrite) { *v = otherVID }},
		{"vid time", func(v *volume.ID, _ *volume.LSN, _ *uint32, _ *[]volume.PageWrite) { v[3]++ }},
		{"lsn", func(_ *volume.ID, l *volume.LSN, _ *uint32, _ *[]volume.PageWrite) { *l++ }},
		{"lsn high byte", func(_ *volume.ID, l *volume.LSN, _ *uint32, _ *[]volume.PageWrite) { *l |= 1 << 63 }},
		{"page count", func(_ *volume.ID, _ *volume.LSN, c *uint32, _ *[]volume.PageWrite) { *c++ }},
		{"page index", func(_ *volume.ID, _ *volume.LSN, _ *uint32, p *[]volume.PageWrite) { (*p)[2].Idx = 99 }},
		{"first data byte", func(_ *volume.ID, _ *volume.LSN, _ *uint32, p *[]volume.PageWrite) { (*p)[0].Data[0] ^= 1 }},
		{"last data byte", func(_ *volume.ID, _ *volume.LSN, _ *uint32, p *[]volume.PageWrite) {
			(*p)[2].Data[volume.PageSize-1] ^= 0x80
		}},
		{"page removed", func(_ *volume.ID, _ *volume.LSN, _ *uint32, p *[]volume.PageWrite) { *p = (*p)[:2] }},
		{"page added", func(_ *volume.ID, _ *volume.LSN, _ *uint32, p *[]volume.PageWrite) { *p = append(*p, page(101, 0)) }},
		{"no pages", func(_ *volume.ID, _ *volume.LSN, _ *uint32, p *[]volume.PageWrite) { *p = nil }},
	}
	seen := map[volume.Hash]string{base: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, l, c, p := vid, lsn, pageCount, clonePages()
			tt.mutate(&v, &l, &c, &p)
			got := volume.CommitHash(v, l, c, p)
			if prev, ok := seen[got]; ok {
				t.Fatalf("hash %s equals the %s hash", got, prev)
			}
			seen[got] = tt.name
			if ref := refCommitHash(v, l, c, p); got != ref {
				t.Fatalf("CommitHash = %s, reference %s", got, ref)
			}
		})
	}

	t.Run("deterministic", func(t *testing.T) {
		if again := volume.CommitHash(vid, lsn, pageCount, clonePages()); again != base {
			t.Fatalf("hash changed between calls: %s then %s", base, again)
		}
	})
}

func TestHash_Text(t *testing.T) {
	vid, lsn, pageCount, pages := goldenCommit(t)
	h := volume.CommitHash(vid, lsn, pageCount, pages)
	s := h.String()

	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "round trip", in: s},
		{name: "zero", in: strings.Repeat("0", 64)},
		{name: "63 chars", in: s[:63], wantErr: "got 63 chars, want 64"},
		{name: "65 chars", in: s + "0", wantErr: "got 65 chars, want 64"},
		{name: "uppercase", in: strings.Repeat("A", 64), wantErr: `bad lowercase hex character 'A' at position 0`},
		{name: "not hex", in: s[:10] + "g" + s[11:], wantErr: `bad lowercase hex character 'g' at position 10`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := volume.ParseHash(tt.in)
			if tt.wantErr == "" {
				if err != nil || got.String() != tt.in {
					t.Fatalf("ParseHash(%q) = %s, %v", tt.in, got, err)
				}
				return
			}
			if !errors.Is(err, volume.ErrInvalidHash) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseHash(%q) error = %v, want ErrInvalidHash containing %q", tt.in, err, tt.wantErr)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		b, err := json.Marshal(h)
		if err != nil || string(b) != `"`+s+`"` {
			t.Fatalf("json = %s, %v", b, err)
		}
		var back volume.Hash
		if err := json.Unmarshal(b, &back); err != nil || back != h {
			t.Fatalf("unmarshal = %s, %v", back, err)
		}
		if err := json.Unmarshal([]byte(`"xyz"`), &back); !errors.Is(err, volume.ErrInvalidHash) || back != h {
			t.Fatalf("bad unmarshal: err %v, hash %s", err, back)
		}
	})
}

func TestHashFromBytes(t *testing.T) {
	b := bytes.Repeat([]byte{0xab}, 32)
	h, err := volume.HashFromBytes(b)
	if err != nil || !bytes.Equal(h[:], b) {
		t.Fatalf("HashFromBytes = %x, %v", h, err)
	}
	if h.IsZero() || !(volume.Hash{}).IsZero() {
		t.Fatal("IsZero wrong")
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := volume.HashFromBytes(make([]byte, n)); !errors.Is(err, volume.ErrInvalidHash) {
			t.Errorf("HashFromBytes(%d bytes) error = %v, want ErrInvalidHash", n, err)
		}
	}
}

func BenchmarkCommitHash(b *testing.B) {
	vid := volume.MustNewID()
	for _, n := range []int{1, 16} {
		pages := make([]volume.PageWrite, n)
		for i := range pages {
			pages[i] = page(volume.PageIdx(i+1), byte(i))
		}
		b.Run(map[int]string{1: "1page", 16: "16pages"}[n], func(b *testing.B) {
			b.SetBytes(int64(n * volume.PageSize))
			b.ReportAllocs()
			for b.Loop() {
				_ = volume.CommitHash(vid, 7, uint32(n), pages)
			}
		})
	}
}
