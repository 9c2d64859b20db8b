package segment_test

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// randomVersions returns n distinct random page versions with indexes in
// [1, maxIdx] and LSNs in [minLSN, minLSN+span), so that pages have several
// versions.
func randomVersions(r *rand.Rand, n int, maxIdx uint32, minLSN volume.LSN, span uint64) []version {
	seen := make(map[[2]uint64]bool)
	var out []version
	for len(out) < n {
		v := version{idx: volume.PageIdx(1 + r.Uint32N(maxIdx)), lsn: minLSN + volume.LSN(r.Uint64N(span))}
		if seen[[2]uint64{uint64(v.idx), uint64(v.lsn)}] {
			continue
		}
		seen[[2]uint64{uint64(v.idx), uint64(v.lsn)}] = true
		v.page = randomPage(r)
		out = append(out, v)
	}
	return out
}

// modelLookup is Lookup by linear scan over the versions.
func modelLookup(vs []version, idx volume.PageIdx, at volume.LSN) (version, bool) {
	var best version
	ok := false
	for _, v := range vs {
		if v.idx == idx && v.lsn <= at && (!ok || v.lsn > best.lsn) {
			best, ok = v, true
		}
	}
	return best, ok
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		maxIdx uint32
		minLSN volume.LSN
		span   uint64
	}{
		{name: "one page", n: 1, maxIdx: 1, minLSN: 1, span: 1},
		{name: "one lsn many pages", n: 40, maxIdx: 100, minLSN: 7, span: 1},
		{name: "one page many versions", n: 30, maxIdx: 1, minLSN: 100, span: 50},
		{name: "dense versions", n: 120, maxIdx: 12, minLSN: 3, span: 20},
		{name: "sparse indexes", n: 60, maxIdx: volume.MaxPageIdx, minLSN: 1 << 40, span: 1 << 20},
	}
	for seed, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 42))
			vs := randomVersions(r, tt.n, tt.maxIdx, tt.minLSN, tt.span)
			seg := build(t, testVID, vs)
			if want := int64(tt.n)*(4096+16) + 64; int64(len(seg)) != want {
				t.Fatalf("segment is %d bytes, want %d", len(seg), want)
			}

			f, ix, err := segment.Decode(seg)
			if err != nil {
				t.Fatal(err)
			}
			minLSN := slices.MinFunc(vs, func(a, b version) int { return cmp.Compare(a.lsn, b.lsn) }).lsn
			maxLSN := slices.MaxFunc(vs, func(a, b version) int { return cmp.Compare(a.lsn, b.lsn) }).lsn
			if f.VID != testVID || f.Count != uint32(tt.n) || f.MinLSN != minLSN || f.MaxLSN != maxLSN {
				t.Fatalf("footer = %+v, want vid %s, count %d, lsns [%d, %d]", f, testVID, tt.n, minLSN, maxLSN)
			}
			if size := segment.Size(f); size != int64(len(seg)) {
				t.Fatalf("Size = %d, want %d", size, len(seg))
			}

			// The entries are the versions in (idx, lsn) order.
			sorted := slices.Clone(vs)
			slices.SortFunc(sorted, func(a, b version) int {
				return cmp.Or(cmp.Compare(a.idx, b.idx), cmp.Compare(a.lsn, b.lsn))
			})
			if ix.Len() != len(sorted) {
				t.Fatalf("Len = %d, want %d", ix.Len(), len(sorted))
			}
			for i, e := range ix.All() {
				v := sorted[i]
				if e.Idx != v.idx || e.LSN != v.lsn || e.CRC != crc32c(v.page) {
					t.Fatalf("entry %d = %+v, want idx %d lsn %d crc %08x", i, e, v.idx, v.lsn, crc32c(v.page))
				}
			}

			// Read as a range reader would: footer from the tail, then the
			// index range, then single pages.
			f2, err := segment.DecodeFooter(seg[len(seg)-segment.FooterSize:])
			if err != nil || f2 != f {
				t.Fatalf("DecodeFooter(tail) = %+v, %v; want %+v", f2, err, f)
			}
			off, n := segment.IndexRange(f2)
			ix2, err := segment.DecodeIndex(f2, seg[off:off+n])
			if err != nil {
				t.Fatal(err)
			}
			idxs := []volume.PageIdx{0, 1, 2, volume.MaxPageIdx}
			lsns := []volume.LSN{0, 1, minLSN - 1, minLSN, maxLSN, maxLSN + 1, 1<<64 - 1}
			for _, v := range vs {
				idxs = append(idxs, v.idx-1, v.idx, v.idx+1)
				lsns = append(lsns, v.lsn-1, v.lsn, v.lsn+1)
			}
			for _, idx := range idxs {
				for _, at := range lsns {
					want, wantOK := modelLookup(vs, idx, at)
					i, e, ok := ix2.Lookup(idx, at)
					if ok != wantOK {
						t.Fatalf("Lookup(%d, %d) ok = %v, want %v", idx, at, ok, wantOK)
					}
					if !ok {
						if i != -1 || e != (segment.Entry{}) {
							t.Fatalf("Lookup(%d, %d) = %d, %+v with ok=false", idx, at, i, e)
						}
						continue
					}
					if e.Idx != want.idx || e.LSN != want.lsn {
						t.Fatalf("Lookup(%d, %d) = (idx %d, lsn %d), want (idx %d, lsn %d)", idx, at, e.Idx, e.LSN, want.idx, want.lsn)
					}
					off, n := segment.PageRange(i)
					page := seg[off : off+n]
					if err := segment.VerifyPage(e, page); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(page, want.page) {
						t.Fatalf("Lookup(%d, %d): page bytes differ", idx, at)
					}
				}
			}
		})
	}
}

func TestIndex_Lookup(t *testing.T) {
	// Versions: page 3 at lsns 5, 8, 9; page 4 at 2; page 10 at 8.
	seg := build(t, testVID, []version{
		{3, 5, patternPage(3, 5)}, {3, 8, patternPage(3, 8)}, {3, 9, patternPage(3, 9)},
		{4, 2, patternPage(4, 2)}, {10, 8, patternPage(10, 8)},
	})
	_, ix, err := segment.Decode(seg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		idx    volume.PageIdx
		at     volume.LSN
		wantI  int
		wantOK bool
	}{
		{name: "before the first version", idx: 3, at: 4, wantI: -1},
		{name: "at lsn 0", idx: 3, at: 0, wantI: -1},
		{name: "exactly the first version", idx: 3, at: 5, wantI: 0, wantOK: true},
		{name: "between versions", idx: 3, at: 7, wantI: 0, wantOK: true},
		{name: "exactly a middle version", idx: 3, at: 8, wantI: 1, wantOK: true},
		{name: "exactly the last version", idx: 3, at: 9, wantI: 2, wantOK: true},
		{name: "after the last version", idx: 3, at: 1 << 62, wantI: 2, wantOK: true},
		{name: "single version page", idx: 4, at: 9, wantI: 3, wantOK: true},
		{name: "single version page too early", idx: 4, at: 1, wantI: -1},
		{name: "last entry", idx: 10, at: 8, wantI: 4, wantOK: true},
		{name: "absent page between", idx: 5, at: 9, wantI: -1},
		{name: "absent page below all", idx: 1, at: 9, wantI: -1},
		{name: "absent page above all", idx: 11, at: 9, wantI: -1},
		{name: "page index 0", idx: 0, at: 9, wantI: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, e, ok := ix.Lookup(tt.idx, tt.at)
			if i != tt.wantI || ok != tt.wantOK {
				t.Fatalf("Lookup(%d, %d) = %d, %+v, %v; want %d, %v", tt.idx, tt.at, i, e, ok, tt.wantI, tt.wantOK)
			}
			if ok && e != ix.Entries()[i] {
				t.Fatalf("Lookup entry %+v is not entry %d %+v", e, i, ix.Entries()[i])
			}
		})
	}

	var zero segment.Index
	if i, _, ok := zero.Lookup(1, 1); ok || i != -1 || zero.Len() != 0 {
		t.Errorf("zero Index: Lookup = %d, %v; Len = %d", i, ok, zero.Len())
	}
}

func TestIndex_EntriesIsACopy(t *testing.T) {
	_, ix, err := segment.Decode(build(t, testVID, goldenVersions()))
	if err != nil {
		t.Fatal(err)
	}
	es := ix.Entries()
	es[0].Idx = 99
	if ix.Entries()[0].Idx == 99 {
		t.Fatal("Entries aliases the index")
	}
	count := 0
	for range ix.All() {
		count++
		break
	}
	if count != 1 {
		t.Fatalf("All did not stop when asked")
	}
}

func TestRanges(t *testing.T) {
	f := segment.Footer{Count: 3}
	if off, n := segment.IndexRange(f); off != 3*4096 || n != 3*16 {
		t.Errorf("IndexRange = %d, %d", off, n)
	}
	if got := segment.Size(f); got != 3*4112+64 {
		t.Errorf("Size = %d", got)
	}
	if off, n := segment.FooterRange(segment.Size(f)); off != 3*4112 || n != 64 {
		t.Errorf("FooterRange = %d, %d", off, n)
	}
	if off, n := segment.PageRange(2); off != 2*4096 || n != 4096 {
		t.Errorf("PageRange(2) = %d, %d", off, n)
	}
	// The largest segment: offsets do not overflow int64.
	f.Count = 1<<32 - 1
	if off, n := segment.IndexRange(f); off != (1<<32-1)*4096 || n != (1<<32-1)*16 {
		t.Errorf("IndexRange(max) = %d, %d", off, n)
	}
}

func TestDecodeFooter_LongTail(t *testing.T) {
	seg := build(t, testVID, goldenVersions())
	want, err := segment.DecodeFooter(seg[len(seg)-64:])
	if err != nil {
		t.Fatal(err)
	}
	// A reader may fetch a larger suffix holding the index too.
	for _, tail := range [][]byte{seg, seg[len(seg)-65:], seg[len(seg)-64-4*16:]} {
		got, err := segment.DecodeFooter(tail)
		if err != nil || got != want {
			t.Errorf("DecodeFooter(%d-byte tail) = %+v, %v; want %+v", len(tail), got, err, want)
		}
	}
}
