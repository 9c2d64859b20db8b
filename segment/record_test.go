package segment_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// randomGraft returns a random set of up to n pages in [1, maxIdx], mixing
// single pages and runs so that every container kind occurs.
func randomGraft(r *rand.Rand, n int, maxIdx uint32) volume.PageSet {
	var s volume.PageSet
	for s.Len() < n {
		idx := volume.PageIdx(1 + r.Uint32N(maxIdx))
		run := 1
		if r.IntN(4) == 0 {
			run = 1 + r.IntN(300)
		}
		for k := 0; k < run && uint64(idx)+uint64(k) <= uint64(maxIdx); k++ {
			s.Add(idx + volume.PageIdx(k))
		}
	}
	return s
}

func TestRecord_RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 42))
	many := segment.Record{VID: testVID, From: 1 << 40, To: 1<<40 + 299, Segment: testSID}
	for i := range 300 {
		c := recordCommit(many.From+volume.LSN(i), 1<<20)
		if i%3 != 0 { // every third commit writes no page
			c.Graft = randomGraft(r, 1+r.IntN(200), 1<<20)
		}
		c.TimeUnixMs = r.Int64() - math.MaxInt64/2
		many.Commits = append(many.Commits, c)
	}
	tests := []struct {
		name string
		rec  segment.Record
	}{
		{name: "golden", rec: goldenRecord()},
		{name: "no segment", rec: segment.Record{VID: testVID, From: 1, To: 2, Commits: []segment.RecordCommit{recordCommit(1, 0), recordCommit(2, 5)}}},
		{name: "one commit", rec: segment.Record{VID: testVID, From: 7, To: 7, Segment: testSID, Commits: []segment.RecordCommit{recordCommit(7, 1, 1)}}},
		{
			name: "largest values",
			rec: segment.Record{VID: testVID, From: math.MaxUint64 - 1, To: math.MaxUint64, Segment: sidWith(0x81, 0xff), Commits: []segment.RecordCommit{
				{LSN: math.MaxUint64 - 1, PageCount: math.MaxUint32, TimeUnixMs: math.MinInt64, Graft: volume.NewPageSet(pageRange(volume.MaxPageIdx-70000, volume.MaxPageIdx)...)},
				{LSN: math.MaxUint64, PageCount: math.MaxUint32, TimeUnixMs: math.MaxInt64, Hash: testHash(1)},
			}},
		},
		{name: "many commits", rec: many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeRecord(t, tt.rec)
			if want := rawOf(t, tt.rec).bytes(); !bytes.Equal(b, want) {
				t.Fatalf("AppendBinary = %d bytes, reference writer %d bytes", len(b), len(want))
			}
			back, err := segment.DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			checkRecordEqual(t, back, tt.rec)
			if again := encodeRecord(t, back); !bytes.Equal(again, b) {
				t.Fatal("decoded record re-encodes differently")
			}

			// AppendBinary appends.
			out, err := tt.rec.AppendBinary([]byte("prefix"))
			if err != nil || string(out[:6]) != "prefix" || !bytes.Equal(out[6:], b) {
				t.Fatalf("AppendBinary(prefix) = %d bytes, %v", len(out), err)
			}

			// The decoded record does not alias its input.
			clear(b)
			checkRecordEqual(t, back, tt.rec)
		})
	}
}

// recordCase is a record that breaks one invariant: AppendBinary refuses it
// with ErrInvalidRecord and DecodeRecord rejects its raw form with
// ErrCorrupt, both naming the same problem.
type recordCase struct {
	name    string
	rec     segment.Record
	problem string
}

func invalidRecords() []recordCase {
	with := func(edit func(*segment.Record)) segment.Record {
		r := goldenRecord()
		edit(&r)
		return r
	}
	return []recordCase{
		{
			name:    "from 0",
			rec:     segment.Record{VID: testVID, Commits: []segment.RecordCommit{recordCommit(0, 0)}},
			problem: "from lsn 0",
		},
		{name: "to before from", rec: with(func(r *segment.Record) { r.To = 9 }), problem: "to lsn 9 < from lsn 10"},
		{
			name:    "range beyond a u32 count",
			rec:     with(func(r *segment.Record) { r.From, r.To = 1, 1<<32 }),
			problem: "lsns [1, 4294967296] are 4294967296 commits, more than 4294967295",
		},
		{name: "too few commits", rec: with(func(r *segment.Record) { r.Commits = r.Commits[:3] }), problem: "3 commits for lsns [10, 13], want 4"},
		{name: "too many commits", rec: with(func(r *segment.Record) { r.To = 12 }), problem: "4 commits for lsns [10, 12], want 3"},
		{name: "no commits", rec: with(func(r *segment.Record) { r.Commits = nil }), problem: "0 commits for lsns [10, 13], want 4"},
		{
			name:    "volume id as segment id",
			rec:     with(func(r *segment.Record) { r.Segment = segment.ID(testVID) }),
			problem: "segment id has prefix byte 0x80, want 0x81 (or all zero for no segment)",
		},
		{name: "lsn gap", rec: with(func(r *segment.Record) { r.Commits[2].LSN = 13 }), problem: "commits[2]: lsn 13, want 12"},
		{name: "lsn repeated", rec: with(func(r *segment.Record) { r.Commits[1].LSN = 10 }), problem: "commits[1]: lsn 10, want 11"},
		{name: "lsns swapped", rec: with(func(r *segment.Record) { r.Commits[0].LSN, r.Commits[1].LSN = 11, 10 }), problem: "commits[0]: lsn 11, want 10"},
		{
			name:    "graft beyond page count",
			rec:     with(func(r *segment.Record) { r.Commits[0].PageCount = 2 }),
			problem: "commits[0] (lsn 10): graft: page 3 beyond page_count 2",
		},
		{
			name:    "graft with page count 0",
			rec:     with(func(r *segment.Record) { r.Commits[3].PageCount = 0 }),
			problem: "commits[3] (lsn 13): graft: page 4294967295 beyond page_count 0",
		},
		{
			name:    "pages without a segment",
			rec:     with(func(r *segment.Record) { r.Segment = segment.ID{} }),
			problem: "commits[0] (lsn 10) wrote 3 pages, but the record names no segment",
		},
		{
			name: "segment without pages",
			rec: segment.Record{VID: testVID, From: 1, To: 2, Segment: testSID, Commits: []segment.RecordCommit{
				recordCommit(1, 3), recordCommit(2, 0),
			}},
			problem: "segment " + testSID.String() + " named, but no commit wrote a page",
		},
	}
}

func TestRecord_AppendBinaryInvalid(t *testing.T) {
	check := func(t *testing.T, rec segment.Record, wantIs error, wantErr string) {
		t.Helper()
		out, err := rec.AppendBinary([]byte("prefix"))
		if err == nil || err.Error() != wantErr {
			t.Fatalf("AppendBinary error = %v, want %q", err, wantErr)
		}
		if !errors.Is(err, wantIs) {
			t.Errorf("error %v does not wrap %v", err, wantIs)
		}
		if errors.Is(err, segment.ErrCorrupt) {
			t.Errorf("encoder error %v wraps ErrCorrupt", err)
		}
		if string(out) != "prefix" {
			t.Errorf("AppendBinary returned %q on error, want dst unchanged", out)
		}
	}
	for _, tt := range invalidRecords() {
		t.Run(tt.name, func(t *testing.T) {
			check(t, tt.rec, segment.ErrInvalidRecord, "segment: invalid log record: "+tt.problem)
		})
	}
	t.Run("zero volume id", func(t *testing.T) {
		r := goldenRecord()
		r.VID = volume.ID{}
		check(t, r, segment.ErrInvalidVolume, "segment: invalid volume id: prefix byte 0x00, want 0x80")
	})
	t.Run("graft holding page 0", func(t *testing.T) {
		// A PageSet never holds 0, unless its read-only Bitmap is written.
		r := goldenRecord()
		r.Commits[0].Graft.Bitmap().Add(0)
		check(t, r, segment.ErrInvalidRecord, "segment: invalid log record: commits[0] (lsn 10): graft: page index 0 is invalid")
	})
	t.Run("zero record", func(t *testing.T) {
		check(t, segment.Record{}, segment.ErrInvalidVolume, "segment: invalid volume id: prefix byte 0x00, want 0x80")
	})
}

func TestDecodeRecord_Invalid(t *testing.T) {
	for _, tt := range invalidRecords() {
		t.Run(tt.name, func(t *testing.T) {
			r, err := segment.DecodeRecord(rawOf(t, tt.rec).bytes())
			if want := "segment: corrupt log record: " + tt.problem; err == nil || err.Error() != want {
				t.Fatalf("DecodeRecord error = %v, want %q", err, want)
			}
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			if r.Commits != nil || r.From != 0 || !r.VID.IsZero() {
				t.Errorf("record %+v returned with an error", r)
			}
		})
	}

	valid := rawOf(t, segment.Record{VID: testVID, From: 1, To: 1, Segment: testSID, Commits: []segment.RecordCommit{recordCommit(1, 8, 1, 2, 3)}})
	with := func(edit func(*rawRecord)) []byte {
		r := valid
		r.commits = append([]rawCommit(nil), valid.commits...)
		edit(&r)
		return r.bytes()
	}
	// 100 pages in one array container: valid portable Roaring, but
	// PageSet.MarshalBinary writes them as one run.
	nonCanonical := []byte{0x3a, 0x30, 0, 0, 1, 0, 0, 0, 0, 0, 99, 0, 16, 0, 0, 0}
	for idx := range 100 {
		nonCanonical = append(nonCanonical, byte(idx+1), 0)
	}
	// Page 0 alone, in an array container.
	pageZero := []byte{0x3a, 0x30, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0}
	// A first commit whose 56-byte graft leaves 40 bytes for the second.
	bigGraft := graftBytes(t, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39)

	tests := []struct {
		name    string
		in      []byte
		wantIs  error
		alsoIs  error  // another error the error must wrap
		wantErr string // exact message; a trailing space makes it a prefix
	}{
		{name: "valid", in: valid.bytes()},
		{name: "empty", in: nil, wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt log record: truncated: got 0 bytes, want at least 68"},
		{name: "header only", in: valid.bytes()[:67], wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt log record: truncated: got 67 bytes, want at least 68"},
		{name: "bad magic", in: with(func(r *rawRecord) { r.magic = "GRFTSEG1" }), wantIs: segment.ErrCorrupt, wantErr: `segment: corrupt log record: magic "GRFTSEG1", want "GRFTLOG1"`},
		{name: "segment bytes", in: build(t, testVID, goldenVersions()), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt log record: magic "},
		{name: "bad checksum", in: func() []byte { b := valid.bytes(); b[len(b)-1] ^= 1; return b }(), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt log record: checksum mismatch: stored "},
		{name: "trailing byte after checksum", in: append(valid.bytes(), 0), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt log record: checksum mismatch: stored "},
		{name: "version 2", in: with(func(r *rawRecord) { r.version = 2 }), wantIs: segment.ErrUnsupported, wantErr: "segment: unsupported format: log record version 2, want 1"},
		{name: "version 0", in: with(func(r *rawRecord) { r.version = 0 }), wantIs: segment.ErrUnsupported, wantErr: "segment: unsupported format: log record version 0, want 1"},
		{name: "flags", in: with(func(r *rawRecord) { r.flags = 0x8000 }), wantIs: segment.ErrUnsupported, wantErr: "segment: unsupported format: log record flags 0x8000, want 0"},
		{name: "zero vid", in: with(func(r *rawRecord) { r.vid = volume.ID{} }), wantIs: segment.ErrInvalidVolume, wantErr: "segment: invalid volume id: log record volume id has prefix byte 0x00, want 0x80"},
		{name: "segment id as vid", in: with(func(r *rawRecord) { r.vid = volume.ID(testSID) }), wantIs: segment.ErrInvalidVolume, wantErr: "segment: invalid volume id: log record volume id has prefix byte 0x81, want 0x80"},
		{
			name:    "count beyond the bytes",
			in:      with(func(r *rawRecord) { r.to, r.count = 1000, 1000 }),
			wantIs:  segment.ErrCorrupt,
			wantErr: "segment: corrupt log record: 1000 commits need at least 56000 bytes, 78 left",
		},
		{
			name:    "largest count",
			in:      with(func(r *rawRecord) { r.to, r.count = math.MaxUint32, math.MaxUint32 }),
			wantIs:  segment.ErrCorrupt,
			wantErr: "segment: corrupt log record: 4294967295 commits need at least 240518168520 bytes, 78 left",
		},
		{
			name: "second commit truncated",
			in: with(func(r *rawRecord) {
				r.to, r.count = 2, 2
				r.commits[0].pageCount, r.commits[0].graft = 100, bigGraft
				r.trailing = make([]byte, 40)
			}),
			wantIs:  segment.ErrCorrupt,
			wantErr: "segment: corrupt log record: commits[1]: truncated: 40 bytes left, want at least 56",
		},
		{
			name:    "graft_len beyond the bytes",
			in:      withCRC(valid.body()[:len(valid.body())-1]),
			wantIs:  segment.ErrCorrupt,
			wantErr: "segment: corrupt log record: commits[0] (lsn 1): graft_len 22, only 21 bytes left",
		},
		{
			name:    "empty graft bytes",
			in:      with(func(r *rawRecord) { r.commits[0].graft = nil }),
			wantIs:  segment.ErrCorrupt,
			alsoIs:  volume.ErrInvalidPageSet,
			wantErr: "segment: corrupt log record: commits[0] (lsn 1): graft: volume: invalid page set: truncated: cookie needs 4 bytes at offset 0, 0 left",
		},
		{
			name:    "graft bad cookie",
			in:      with(func(r *rawRecord) { r.commits[0].graft = []byte{1, 2, 3, 4} }),
			wantIs:  segment.ErrCorrupt,
			alsoIs:  volume.ErrInvalidPageSet,
			wantErr: "segment: corrupt log record: commits[0] (lsn 1): graft: volume: invalid page set: bad cookie 0x04030201",
		},
		{
			name:    "graft with page 0",
			in:      with(func(r *rawRecord) { r.commits[0].graft = pageZero }),
			wantIs:  segment.ErrCorrupt,
			alsoIs:  volume.ErrInvalidPageSet,
			wantErr: "segment: corrupt log record: commits[0] (lsn 1): graft: volume: invalid page set: page index 0 is invalid",
		},
		{
			name:    "graft not canonical",
			in:      with(func(r *rawRecord) { r.commits[0].pageCount, r.commits[0].graft = 100, nonCanonical }),
			wantIs:  segment.ErrCorrupt,
			wantErr: "segment: corrupt log record: commits[0] (lsn 1): graft: not in canonical form",
		},
		{
			name:    "trailing bytes",
			in:      with(func(r *rawRecord) { r.trailing = []byte{0, 0, 0} }),
			wantIs:  segment.ErrCorrupt,
			wantErr: "segment: corrupt log record: 3 trailing bytes after the last commit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := segment.DecodeRecord(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(encodeRecord(t, r), tt.in) {
					t.Fatal("record re-encodes differently")
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeRecord error = %v, want %q", err, tt.wantErr)
			}
			if !strings.HasSuffix(tt.wantErr, " ") && err.Error() != tt.wantErr {
				t.Errorf("error = %q, want exactly %q", err, tt.wantErr)
			}
			for _, sentinel := range []error{segment.ErrCorrupt, segment.ErrUnsupported, segment.ErrInvalidVolume} {
				if got := errors.Is(err, sentinel); got != (sentinel == tt.wantIs) {
					t.Errorf("errors.Is(%v, %v) = %v", err, sentinel, got)
				}
			}
			if tt.alsoIs != nil && !errors.Is(err, tt.alsoIs) {
				t.Errorf("error %v does not wrap %v", err, tt.alsoIs)
			}
			if r.Commits != nil || r.From != 0 || !r.VID.IsZero() {
				t.Errorf("record %+v returned with an error", r)
			}
		})
	}
}

func TestRecord_Graft(t *testing.T) {
	r := goldenRecord()
	g := r.Graft()
	want := volume.NewPageSet(1, 2, 3, volume.MaxPageIdx)
	want.Union(r.Commits[2].Graft)
	if !g.Equal(want) {
		t.Fatalf("Graft() = %d pages, want %d", g.Len(), want.Len())
	}
	g.Add(4)
	for i, c := range r.Commits {
		if c.Graft.Contains(4) {
			t.Fatalf("adding to Graft() changed commits[%d]", i)
		}
	}
	empty := segment.Record{VID: testVID, From: 1, To: 1, Commits: []segment.RecordCommit{recordCommit(1, 0)}}
	if g := empty.Graft(); !g.IsEmpty() {
		t.Fatalf("Graft() of a record without pages = %v", g.Slice())
	}
}

func TestRecord_Commit(t *testing.T) {
	r := goldenRecord()
	short := goldenRecord()
	short.Commits = short.Commits[:2]
	gap := goldenRecord()
	gap.Commits[1].LSN = 99
	tests := []struct {
		name    string
		rec     segment.Record
		lsn     volume.LSN
		wantOK  bool
		wantIdx int // index into rec.Commits
	}{
		{name: "first", rec: r, lsn: 10, wantOK: true, wantIdx: 0},
		{name: "inner", rec: r, lsn: 12, wantOK: true, wantIdx: 2},
		{name: "last", rec: r, lsn: 13, wantOK: true, wantIdx: 3},
		{name: "before", rec: r, lsn: 9},
		{name: "after", rec: r, lsn: 14},
		{name: "lsn 0", rec: r, lsn: 0},
		{name: "largest lsn", rec: r, lsn: math.MaxUint64},
		{name: "missing from a short record", rec: short, lsn: 12},
		{name: "mislabeled in an invalid record", rec: gap, lsn: 11},
		{name: "zero record", rec: segment.Record{}, lsn: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := tt.rec.Commit(tt.lsn)
			if ok != tt.wantOK {
				t.Fatalf("Commit(%d) ok = %v, want %v", tt.lsn, ok, tt.wantOK)
			}
			if !ok {
				if c.LSN != 0 || !c.Graft.IsEmpty() {
					t.Errorf("Commit(%d) = %+v with ok false", tt.lsn, c)
				}
				return
			}
			want := tt.rec.Commits[tt.wantIdx]
			if c.LSN != tt.lsn || c.Hash != want.Hash || !c.Graft.Equal(want.Graft) {
				t.Errorf("Commit(%d) = lsn %d, want commits[%d]", tt.lsn, c.LSN, tt.wantIdx)
			}
		})
	}
}
