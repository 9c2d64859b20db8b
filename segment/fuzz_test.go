package segment_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// fuzzSeeds are whole segments the fuzz targets start from.
func fuzzSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	return [][]byte{
		build(tb, testVID, goldenVersions()),
		build(tb, testVID, []version{{1, 1, volume.ZeroPage()}}),
		build(tb, testVID, []version{{volume.MaxPageIdx, 1<<64 - 1, patternPage(9, 9)}, {1, 1 << 63, patternPage(1, 1)}}),
	}
}

// checkDecodeError fails unless err wraps exactly one of the decoders'
// sentinels.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, segment.ErrCorrupt) == errors.Is(err, segment.ErrUnsupported) {
		t.Fatalf("error %v wraps neither or both of ErrCorrupt and ErrUnsupported", err)
	}
}

func FuzzDecodeFooter(f *testing.F) {
	for _, seg := range fuzzSeeds(f) {
		f.Add(seg[len(seg)-segment.FooterSize:])
		f.Add(seg[len(seg)-segment.FooterSize-16:])
	}
	f.Add(rawFooter{magic: "GRFTSEG1", version: 2, vid: testVID, count: 1, minLSN: 1, maxLSN: 1}.bytes())
	f.Add(rawFooter{magic: "GRFTSEG1", version: 1, vid: testVID, count: 1, minLSN: 1, maxLSN: 2}.bytes())
	f.Add([]byte("GRFTSEG1"))
	f.Fuzz(func(t *testing.T, tail []byte) {
		ft, err := segment.DecodeFooter(tail)
		if err != nil {
			checkDecodeError(t, err)
			if ft != (segment.Footer{}) {
				t.Fatalf("footer %+v returned with error %v", ft, err)
			}
			return
		}
		if got, want := segment.AppendFooter(nil, ft), tail[len(tail)-segment.FooterSize:]; !bytes.Equal(got, want) {
			t.Fatalf("footer %+v re-encodes to %x, decoded from %x", ft, got, want)
		}
		if ft.Count == 0 || ft.MinLSN == 0 || ft.MinLSN > ft.MaxLSN || !ft.VID.Valid() {
			t.Fatalf("accepted an inconsistent footer %+v", ft)
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	for _, seg := range fuzzSeeds(f) {
		ft, err := segment.DecodeFooter(seg)
		if err != nil {
			f.Fatal(err)
		}
		off, n := segment.IndexRange(ft)
		f.Add(seg[off:off+n], uint64(ft.MinLSN), uint64(ft.MaxLSN))
	}
	f.Add(rawIndex(segment.Entry{Idx: 1, LSN: 5}, segment.Entry{Idx: 1, LSN: 5}), uint64(5), uint64(5))
	f.Add(rawIndex(segment.Entry{Idx: 0, LSN: 5}), uint64(5), uint64(5))
	f.Add([]byte{1, 2, 3}, uint64(1), uint64(1))
	f.Fuzz(func(t *testing.T, index []byte, minLSN, maxLSN uint64) {
		// The footer matches the index's length and checksum, so that the
		// fuzzer reaches the entry checks.
		ft := segment.Footer{
			VID:      testVID,
			Count:    uint32(len(index) / segment.EntrySize),
			MinLSN:   volume.LSN(minLSN),
			MaxLSN:   volume.LSN(maxLSN),
			IndexCRC: crc32c(index),
		}
		ix, err := segment.DecodeIndex(ft, index)
		if err != nil {
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if ix.Len() != 0 {
				t.Fatalf("index of %d entries returned with error %v", ix.Len(), err)
			}
			return
		}
		entries := ix.Entries()
		if got := segment.AppendIndex(nil, entries); !bytes.Equal(got, index) {
			t.Fatalf("index re-encodes to %x, decoded from %x", got, index)
		}
		for i, e := range entries {
			if e.Idx == 0 || e.LSN < ft.MinLSN || e.LSN > ft.MaxLSN {
				t.Fatalf("entry %d %+v is invalid for footer %+v", i, e, ft)
			}
			if i > 0 && !(entries[i-1].Idx < e.Idx || entries[i-1].Idx == e.Idx && entries[i-1].LSN < e.LSN) {
				t.Fatalf("entries %d and %d out of order", i-1, i)
			}
			if j, got, ok := ix.Lookup(e.Idx, e.LSN); !ok || j != i || got != e {
				t.Fatalf("Lookup(%d, %d) = %d, %+v, %v; want entry %d", e.Idx, e.LSN, j, got, ok, i)
			}
			if e.LSN > 1 {
				// One LSN earlier finds the previous version of the page,
				// if any.
				j, _, ok := ix.Lookup(e.Idx, e.LSN-1)
				wantOK := i > 0 && entries[i-1].Idx == e.Idx
				if ok != wantOK || ok && j != i-1 {
					t.Fatalf("Lookup(%d, %d) = %d, %v; want ok=%v", e.Idx, e.LSN-1, j, ok, wantOK)
				}
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	for _, seg := range fuzzSeeds(f) {
		f.Add(seg)
		f.Add(seg[1:])
		f.Add(seg[:len(seg)-1])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, seg []byte) {
		ft, ix, err := segment.Decode(seg)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		// What decodes re-encodes identically via a Builder.
		b := segment.NewBuilder(ft.VID)
		for i, e := range ix.All() {
			off, n := segment.PageRange(i)
			if err := b.Add(e.Idx, e.LSN, seg[off:off+n]); err != nil {
				t.Fatalf("Add decoded entry %d: %v", i, err)
			}
		}
		got, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, seg) {
			t.Fatalf("decoded segment re-encodes differently")
		}
	})
}
