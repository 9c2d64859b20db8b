package segment_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

func TestBuilder_Add(t *testing.T) {
	good := patternPage(1, 1)
	tests := []struct {
		name    string
		idx     volume.PageIdx
		lsn     volume.LSN
		page    []byte
		wantErr string // exact message; empty means success
		alsoIs  error  // another sentinel the error must wrap
	}{
		{name: "new page", idx: 9, lsn: 5, page: good},
		{name: "new version of an added page", idx: 3, lsn: 6, page: good},
		{name: "older version of an added page", idx: 3, lsn: 4, page: good},
		{name: "other page at an added lsn", idx: 4, lsn: 5, page: good},
		{name: "largest index and lsn", idx: volume.MaxPageIdx, lsn: math.MaxUint64, page: good},
		{name: "all-zero page", idx: 10, lsn: 1, page: volume.ZeroPage()},
		{
			name: "short page", idx: 3, lsn: 9, page: good[:100],
			wantErr: "segment: invalid page: idx 3, lsn 9: volume: invalid page: page is 100 bytes, want 4096",
			alsoIs:  volume.ErrInvalidPage,
		},
		{
			name: "long page", idx: 3, lsn: 9, page: append(bytes.Clone(good), 0),
			wantErr: "segment: invalid page: idx 3, lsn 9: volume: invalid page: page is 4097 bytes, want 4096",
			alsoIs:  volume.ErrInvalidPage,
		},
		{
			name: "nil page", idx: 3, lsn: 9, page: nil,
			wantErr: "segment: invalid page: idx 3, lsn 9: volume: invalid page: page is 0 bytes, want 4096",
			alsoIs:  volume.ErrInvalidPage,
		},
		{name: "page index 0", idx: 0, lsn: 9, page: good, wantErr: "segment: invalid page: idx 0, lsn 9: page index 0 is invalid"},
		{name: "lsn 0", idx: 3, lsn: 0, page: good, wantErr: "segment: invalid page: idx 3, lsn 0: lsn 0 is invalid"},
		{name: "duplicate version", idx: 3, lsn: 5, page: patternPage(2, 2), wantErr: "segment: invalid page: idx 3, lsn 5: duplicate page version"},
		{name: "size checked before index", idx: 0, lsn: 0, page: nil, wantErr: "segment: invalid page: idx 0, lsn 0: volume: invalid page: page is 0 bytes, want 4096", alsoIs: volume.ErrInvalidPage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := segment.NewBuilder(testVID)
			if err := b.Add(3, 5, good); err != nil {
				t.Fatal(err)
			}
			before, err := b.Encode()
			if err != nil {
				t.Fatal(err)
			}
			err = b.Add(tt.idx, tt.lsn, tt.page)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				if b.Len() != 2 {
					t.Fatalf("Len = %d, want 2", b.Len())
				}
				return
			}
			if err == nil {
				t.Fatalf("Add succeeded, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, segment.ErrInvalidPage) {
				t.Errorf("error %v does not wrap ErrInvalidPage", err)
			}
			if tt.alsoIs != nil && !errors.Is(err, tt.alsoIs) {
				t.Errorf("error %v does not wrap %v", err, tt.alsoIs)
			}
			if b.Len() != 1 {
				t.Errorf("Len = %d after a rejected Add, want 1", b.Len())
			}
			if after, err := b.Encode(); err != nil || !bytes.Equal(after, before) {
				t.Errorf("a rejected Add changed the segment (err %v)", err)
			}
		})
	}
}

func TestBuilder_AddCopiesPage(t *testing.T) {
	page := patternPage(1, 1)
	want := bytes.Clone(page)
	b := segment.NewBuilder(testVID)
	if err := b.Add(1, 1, page); err != nil {
		t.Fatal(err)
	}
	clear(page)
	seg, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seg[:volume.PageSize], want) {
		t.Fatal("Builder kept a reference to the caller's page")
	}
}

func TestBuilder_AddCommit(t *testing.T) {
	p := func(idx volume.PageIdx) volume.PageWrite {
		return volume.PageWrite{Idx: idx, Data: patternPage(idx, 7)}
	}
	tests := []struct {
		name    string
		pages   []volume.PageWrite
		wantErr string // exact message; empty means success
	}{
		{name: "empty commit", pages: nil},
		{name: "pages in any order", pages: []volume.PageWrite{p(9), p(2), p(5)}},
		{name: "bad page last", pages: []volume.PageWrite{p(9), p(2), {Idx: 4, Data: make([]byte, 10)}}, wantErr: "pages[2]: segment: invalid page: idx 4, lsn 7: volume: invalid page: page is 10 bytes, want 4096"},
		{name: "page index 0", pages: []volume.PageWrite{p(9), p(0)}, wantErr: "pages[1]: segment: invalid page: idx 0, lsn 7: page index 0 is invalid"},
		{name: "duplicate within the commit", pages: []volume.PageWrite{p(9), p(2), p(9)}, wantErr: "pages[2]: segment: invalid page: idx 9, lsn 7: duplicate of pages[0]"},
		{name: "duplicate of an added version", pages: []volume.PageWrite{p(9), p(1)}, wantErr: "pages[1]: segment: invalid page: idx 1, lsn 7: duplicate page version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := segment.NewBuilder(testVID)
			if err := b.Add(1, 7, patternPage(1, 7)); err != nil {
				t.Fatal(err)
			}
			err := b.AddCommit(7, tt.pages)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b.Len() != 1+len(tt.pages) {
					t.Fatalf("Len = %d, want %d", b.Len(), 1+len(tt.pages))
				}
				seg, err := b.Encode()
				if err != nil {
					t.Fatal(err)
				}
				_, ix, err := segment.Decode(seg)
				if err != nil {
					t.Fatal(err)
				}
				for _, pw := range tt.pages {
					i, _, ok := ix.Lookup(pw.Idx, 7)
					if !ok {
						t.Fatalf("page %d missing", pw.Idx)
					}
					off, n := segment.PageRange(i)
					if !bytes.Equal(seg[off:off+n], pw.Data) {
						t.Fatalf("page %d has the wrong bytes", pw.Idx)
					}
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, segment.ErrInvalidPage) {
				t.Errorf("error %v does not wrap ErrInvalidPage", err)
			}
			if b.Len() != 1 {
				t.Errorf("Len = %d after a rejected commit, want 1 (all or nothing)", b.Len())
			}
		})
	}
}

// TestBuilder_Full is not parallel: it lowers a package limit.
func TestBuilder_Full(t *testing.T) {
	defer segment.SetMaxCount(2)()
	b := segment.NewBuilder(testVID)
	for i := range volume.PageIdx(2) {
		if err := b.Add(i+1, 1, patternPage(i+1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	err := b.Add(3, 1, patternPage(3, 1))
	if want := "segment: invalid page: idx 3, lsn 1: the builder holds the maximum 2 page versions"; err == nil || err.Error() != want {
		t.Errorf("Add to a full builder: %v, want %q", err, want)
	}
	err = b.AddCommit(2, []volume.PageWrite{{Idx: 1, Data: patternPage(1, 2)}})
	if want := "segment: invalid page: lsn 2: 1 pages do not fit; the builder holds 2 of at most 2"; err == nil || err.Error() != want {
		t.Errorf("AddCommit to a full builder: %v, want %q", err, want)
	}
	if b.Len() != 2 {
		t.Errorf("Len = %d, want 2", b.Len())
	}
}

func TestBuilder_EncodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		b       *segment.Builder
		add     bool
		wantIs  error
		wantErr string
	}{
		{name: "empty", b: segment.NewBuilder(testVID), wantIs: segment.ErrEmpty, wantErr: "segment: empty: no pages"},
		{name: "zero volume id", b: segment.NewBuilder(volume.ID{}), add: true, wantIs: segment.ErrInvalidVolume, wantErr: "segment: invalid volume id: prefix byte 0x00, want 0x80"},
		{name: "segment id as volume id", b: segment.NewBuilder(volume.ID(sidWith(0x81, 1))), add: true, wantIs: segment.ErrInvalidVolume, wantErr: "segment: invalid volume id: prefix byte 0x81, want 0x80"},
		{name: "zero builder", b: new(segment.Builder), add: true, wantIs: segment.ErrInvalidVolume, wantErr: "segment: invalid volume id: prefix byte 0x00, want 0x80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.add {
				if err := tt.b.Add(1, 1, patternPage(1, 1)); err != nil {
					t.Fatal(err)
				}
			}
			seg, err := tt.b.Encode()
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.wantIs) {
				t.Errorf("Encode = %d bytes, %v; want %q", len(seg), err, tt.wantErr)
			}
			dst := []byte("prefix")
			out, err := tt.b.AppendBinary(dst)
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.wantIs) || string(out) != "prefix" {
				t.Errorf("AppendBinary = %q, %v; want %q and dst unchanged", out, err, tt.wantErr)
			}
			var buf bytes.Buffer
			n, err := tt.b.WriteTo(&buf)
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.wantIs) || n != 0 || buf.Len() != 0 {
				t.Errorf("WriteTo = %d, %v, wrote %d bytes; want %q and nothing written", n, err, buf.Len(), tt.wantErr)
			}
		})
	}
}

func TestBuilder_EncodeIsOrderIndependent(t *testing.T) {
	versions := goldenVersions()
	want := build(t, testVID, versions)
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		perm := make([]version, len(order))
		for i, j := range order {
			perm[i] = versions[j]
		}
		if got := build(t, testVID, perm); !bytes.Equal(got, want) {
			t.Errorf("add order %v encodes differently", order)
		}
	}
}

func TestBuilder_Reuse(t *testing.T) {
	b := segment.NewBuilder(testVID)
	if err := b.Add(5, 2, patternPage(5, 2)); err != nil {
		t.Fatal(err)
	}
	first, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Encode()
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second Encode differs (err %v)", err)
	}
	// Adding after Encode, out of order, still encodes sorted.
	if err := b.Add(1, 3, patternPage(1, 3)); err != nil {
		t.Fatal(err)
	}
	got, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := build(t, testVID, []version{{1, 3, patternPage(1, 3)}, {5, 2, patternPage(5, 2)}})
	if !bytes.Equal(got, want) {
		t.Fatal("Add after Encode encodes differently from a fresh builder")
	}

	other := volume.ID{0x80, 0xee}
	b.Reset(other)
	if b.Len() != 0 {
		t.Fatalf("Len after Reset = %d", b.Len())
	}
	// The version added before Reset is no longer a duplicate.
	if err := b.Add(5, 2, patternPage(5, 3)); err != nil {
		t.Fatal(err)
	}
	got, err = b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := build(t, other, []version{{5, 2, patternPage(5, 3)}}); !bytes.Equal(got, want) {
		t.Fatal("Reset builder encodes differently from a fresh builder")
	}
}

func TestBuilder_Size(t *testing.T) {
	b := segment.NewBuilder(testVID)
	if got := b.Size(); got != segment.FooterSize {
		t.Errorf("empty Size = %d, want %d", got, segment.FooterSize)
	}
	for i, v := range goldenVersions() {
		if err := b.Add(v.idx, v.lsn, v.page); err != nil {
			t.Fatal(err)
		}
		if got, want := b.Size(), int64((i+1)*(4096+16)+64); got != want {
			t.Errorf("Size with %d pages = %d, want %d", i+1, got, want)
		}
	}
	seg, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(seg)) != b.Size() {
		t.Errorf("Encode = %d bytes, Size = %d", len(seg), b.Size())
	}
}

func TestBuilder_WriteTo(t *testing.T) {
	b := segment.NewBuilder(testVID)
	for _, v := range goldenVersions() {
		if err := b.Add(v.idx, v.lsn, v.page); err != nil {
			t.Fatal(err)
		}
	}
	want, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("writes what Encode returns", func(t *testing.T) {
		var buf bytes.Buffer
		n, err := b.WriteTo(&buf)
		if err != nil || n != int64(len(want)) || !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("WriteTo = %d, %v; bytes equal %v", n, err, bytes.Equal(buf.Bytes(), want))
		}
	})

	t.Run("AppendBinary appends what Encode returns", func(t *testing.T) {
		dst := []byte("prefix")
		out, err := b.AppendBinary(dst)
		if err != nil || string(out[:6]) != "prefix" || !bytes.Equal(out[6:], want) {
			t.Fatalf("AppendBinary = %d bytes, %v", len(out), err)
		}
		// Reusing a large enough buffer does not reallocate.
		again, err := b.AppendBinary(out[:0])
		if err != nil || &again[0] != &out[0] || !bytes.Equal(again, want) {
			t.Fatalf("AppendBinary into a reused buffer: %v", err)
		}
	})

	writeErr := errors.New("disk full")
	for _, limit := range []int{0, 100, 4096, 3 * 4096, 4*4096 + 10, len(want) - 1} {
		w := &failingWriter{limit: limit, err: writeErr}
		n, err := b.WriteTo(w)
		if !errors.Is(err, writeErr) {
			t.Errorf("limit %d: error %v does not wrap the writer's", limit, err)
		}
		if n != int64(w.n) || n > int64(limit) {
			t.Errorf("limit %d: WriteTo reported %d bytes, writer took %d", limit, n, w.n)
		}
	}
}

// failingWriter accepts limit bytes, then fails with err.
type failingWriter struct {
	limit, n int
	err      error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if room := w.limit - w.n; len(p) > room {
		w.n += room
		return room, w.err
	}
	w.n += len(p)
	return len(p), nil
}

// AddCommitShared encodes exactly what AddCommit does, mixed with copied
// pages and in any order, and survives Reset.
func TestBuilder_AddCommitShared(t *testing.T) {
	copied, shared := segment.NewBuilder(testVID), segment.NewBuilder(testVID)
	for round := range 2 {
		for lsn := volume.LSN(1); lsn <= 5; lsn++ {
			pages := []volume.PageWrite{{Idx: volume.PageIdx(9 - lsn), Data: patternPage(9-volume.PageIdx(lsn), lsn)}, {Idx: 20, Data: patternPage(20, lsn)}}
			if err := copied.AddCommit(lsn, pages); err != nil {
				t.Fatal(err)
			}
			add := shared.AddCommitShared
			if lsn == 3 {
				add = shared.AddCommit
			}
			if err := add(lsn, pages); err != nil {
				t.Fatal(err)
			}
		}
		a, err1 := copied.Encode()
		b, err2 := shared.Encode()
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("round %d: shared pages encode differently (%v, %v)", round, err1, err2)
		}
		copied.Reset(testVID)
		shared.Reset(testVID)
	}
}
