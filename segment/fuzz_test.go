package segment_test

import (
	"bytes"
	"errors"
	"math"
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

// fixCRC returns b with its last 4 bytes replaced by the CRC-32C of the
// others, so that the fuzzer gets past a log record's checksum.
func fixCRC(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	return withCRC(b[:len(b)-4])
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(f, goldenRecord()))
	f.Add(encodeRecord(f, segment.Record{VID: testVID, From: 1, To: 2, Commits: []segment.RecordCommit{recordCommit(1, 0), recordCommit(2, 9)}}))
	f.Add(encodeRecord(f, segment.Record{VID: testVID, From: 5, To: 5, Segment: testSID, Commits: []segment.RecordCommit{recordCommit(5, 1<<20, pageRange(1, 5000)...)}}))
	one := rawOf(f, segment.Record{VID: testVID, From: 1, To: 1, Segment: testSID, Commits: []segment.RecordCommit{recordCommit(1, 8, 1, 2, 3)}})
	f.Add(one.bytes())
	one.count = 1 << 31
	f.Add(one.bytes())
	one.count, one.version = 1, 2
	f.Add(one.bytes())
	f.Add([]byte("GRFTLOG1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, fixCRC(b)} {
			r, err := segment.DecodeRecord(in)
			if err != nil {
				n := 0
				for _, sentinel := range []error{segment.ErrCorrupt, segment.ErrUnsupported, segment.ErrInvalidVolume} {
					if errors.Is(err, sentinel) {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("error %v wraps %d of ErrCorrupt, ErrUnsupported and ErrInvalidVolume, want 1", err, n)
				}
				if r.Commits != nil || r.From != 0 || r.To != 0 || !r.VID.IsZero() || !r.Segment.IsZero() {
					t.Fatalf("record %+v returned with error %v", r, err)
				}
				continue
			}
			if got, err := r.AppendBinary(nil); err != nil || !bytes.Equal(got, in) {
				t.Fatalf("decoded record re-encodes to %d bytes (error %v), decoded from %d", len(got), err, len(in))
			}
			if !r.VID.Valid() || r.From == 0 || r.To < r.From || uint64(len(r.Commits)) != uint64(r.To-r.From)+1 {
				t.Fatalf("accepted an inconsistent record: vid %s, lsns [%d, %d], %d commits", r.VID, r.From, r.To, len(r.Commits))
			}
			wrote := false
			for i, c := range r.Commits {
				if got, ok := r.Commit(c.LSN); !ok || got.LSN != r.From+volume.LSN(i) {
					t.Fatalf("Commit(%d) = lsn %d, %v; want commits[%d]", c.LSN, got.LSN, ok, i)
				}
				if c.Graft.Contains(0) {
					t.Fatalf("commits[%d] graft holds page 0", i)
				}
				wrote = wrote || !c.Graft.IsEmpty()
			}
			if wrote == r.Segment.IsZero() || !r.Segment.IsZero() && !r.Segment.Valid() {
				t.Fatalf("segment %x for a record that wrote pages: %v", r.Segment, wrote)
			}
		}
	})
}

// FuzzDecodeRecordGraft wraps the fuzzed bytes as the graft of a one-commit
// log record with a valid checksum, so that the fuzzer reaches the graft
// checks: whatever decodes must be canonical and within page_count.
func FuzzDecodeRecordGraft(f *testing.F) {
	f.Add(graftBytes(f, 1, 2, 3), uint32(8))
	f.Add(graftBytes(f, pageRange(1, 5000)...), uint32(5000))
	f.Add(graftBytes(f, goldenRecord().Commits[2].Graft.Slice()...), uint32(1<<17))
	f.Add(graftBytes(f, volume.MaxPageIdx), uint32(math.MaxUint32))
	f.Add(graftBytes(f), uint32(0))
	f.Add([]byte{0x3a, 0x30, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 16, 0, 0, 0, 1, 0, 2, 0}, uint32(2))
	f.Fuzz(func(t *testing.T, graft []byte, pageCount uint32) {
		raw := rawRecord{magic: "GRFTLOG1", version: 1, vid: testVID, from: 1, to: 1, sid: testSID, count: 1, commits: []rawCommit{{lsn: 1, pageCount: pageCount, graft: graft}}}
		b := raw.bytes()
		r, err := segment.DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			// Only an empty graft may be rejected for naming a segment.
			if s, derr := volume.DecodePageSet(graft); derr == nil && !s.IsEmpty() && s.Bitmap().Maximum() <= pageCount {
				if c, _ := s.MarshalBinary(); bytes.Equal(c, graft) {
					t.Fatalf("rejected a canonical graft of %d pages within page_count %d: %v", s.Len(), pageCount, err)
				}
			}
			return
		}
		g := r.Commits[0].Graft
		if g.IsEmpty() || g.Bitmap().Maximum() > pageCount {
			t.Fatalf("accepted a graft of %d pages with page_count %d", g.Len(), pageCount)
		}
		if got := encodeRecord(t, r); !bytes.Equal(got, b) {
			t.Fatal("decoded record re-encodes differently")
		}
	})
}
