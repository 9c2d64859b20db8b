package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// TestCorrupt_FlipByte flips one byte in every region of a segment and checks
// that the function reading that region fails, and that the regions before
// it in read order (footer, index, pages) still decode.
func TestCorrupt_FlipByte(t *testing.T) {
	good := build(t, testVID, goldenVersions())
	const n = 4
	indexOff, footerOff := n*4096, n*4096+n*16

	var positions []int
	for p := range n {
		// First, last and a few inner bytes of every page.
		positions = append(positions, p*4096, p*4096+1, p*4096+2049, p*4096+4095)
	}
	for off := indexOff; off < len(good); off++ { // every index and footer byte
		positions = append(positions, off)
	}

	for _, pos := range positions {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			seg := bytes.Clone(good)
			seg[pos] ^= mask

			if _, _, err := segment.Decode(seg); !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: Decode error = %v, want ErrCorrupt", pos, mask, err)
			}
			f, ferr := segment.DecodeFooter(seg[footerOff:])
			if pos >= footerOff {
				if !errors.Is(ferr, segment.ErrCorrupt) {
					t.Fatalf("footer byte %d ^ %#x: DecodeFooter error = %v, want ErrCorrupt", pos-footerOff, mask, ferr)
				}
				continue
			}
			if ferr != nil {
				t.Fatalf("byte %d ^ %#x: DecodeFooter: %v", pos, mask, ferr)
			}
			ix, ierr := segment.DecodeIndex(f, seg[indexOff:footerOff])
			if pos >= indexOff {
				if !errors.Is(ierr, segment.ErrCorrupt) || !strings.Contains(ierr.Error(), "index checksum mismatch") {
					t.Fatalf("index byte %d ^ %#x: DecodeIndex error = %v, want a checksum mismatch", pos-indexOff, mask, ierr)
				}
				continue
			}
			if ierr != nil {
				t.Fatalf("byte %d ^ %#x: DecodeIndex: %v", pos, mask, ierr)
			}
			for i, e := range ix.All() {
				off, n := segment.PageRange(i)
				err := segment.VerifyPage(e, seg[off:off+n])
				if hit := pos/4096 == i; hit != (err != nil) {
					t.Fatalf("page byte %d ^ %#x: VerifyPage(page %d) = %v", pos, mask, i, err)
				}
				if err != nil && !errors.Is(err, segment.ErrCorrupt) {
					t.Fatalf("VerifyPage error %v does not wrap ErrCorrupt", err)
				}
			}
		}
	}
}

func TestCorrupt_Messages(t *testing.T) {
	good := build(t, testVID, goldenVersions())
	flip := func(pos int) []byte {
		b := bytes.Clone(good)
		b[pos] ^= 0xff
		return b
	}
	tests := []struct {
		name    string
		seg     []byte
		wantErr string // prefix of the message
	}{
		{name: "page 2", seg: flip(2*4096 + 7), wantErr: "segment: corrupt: page 2 (idx 2, lsn 11): checksum mismatch: index has "},
		{name: "index", seg: flip(4*4096 + 20), wantErr: "segment: corrupt: index checksum mismatch: footer has "},
		{name: "magic", seg: flip(len(good) - 64), wantErr: `segment: corrupt: footer magic "\xb8RFTSEG1", want "GRFTSEG1"`},
		{name: "version", seg: flip(len(good) - 64 + 9), wantErr: "segment: corrupt: footer checksum mismatch: stored "},
		{name: "footer checksum", seg: flip(len(good) - 1), wantErr: "segment: corrupt: footer checksum mismatch: stored "},
		{name: "leading byte", seg: good[1:], wantErr: "segment: corrupt: segment is 16511 bytes, footer says 16512 (4 pages)"},
		{name: "trailing byte", seg: append(bytes.Clone(good), 0), wantErr: `segment: corrupt: footer magic "RFTSEG1\x00", want "GRFTSEG1"`},
		{name: "short", seg: good[len(good)-63:], wantErr: "segment: corrupt: footer truncated: got 63 bytes, want 64"},
		{name: "empty", seg: nil, wantErr: "segment: corrupt: footer truncated: got 0 bytes, want 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := segment.Decode(tt.seg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Decode error = %v, want prefix %q", err, tt.wantErr)
			}
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		})
	}
}

func TestCorrupt_Truncated(t *testing.T) {
	good := build(t, testVID, goldenVersions())
	for n := range len(good) {
		if _, _, err := segment.Decode(good[:n]); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("Decode(first %d bytes) error = %v, want ErrCorrupt", n, err)
		}
		// Dropping the head keeps a valid footer but the wrong size.
		if _, _, err := segment.Decode(good[n+1:]); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("Decode(last %d bytes) error = %v, want ErrCorrupt", len(good)-n-1, err)
		}
	}
	f, err := segment.DecodeFooter(good)
	if err != nil {
		t.Fatal(err)
	}
	off, n := segment.IndexRange(f)
	index := good[off : off+n]
	for _, b := range [][]byte{nil, index[:n-1], index[:n-16], append(bytes.Clone(index), 0), good[off-1 : off+n]} {
		_, err := segment.DecodeIndex(f, b)
		want := "segment: corrupt: index is " // "... N bytes, want 64 for 4 entries"
		if !errors.Is(err, segment.ErrCorrupt) || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "want 64 for 4 entries") {
			t.Errorf("DecodeIndex(%d bytes) error = %v", len(b), err)
		}
	}
}

func TestDecodeFooter_Invalid(t *testing.T) {
	valid := rawFooter{magic: "GRFTSEG1", version: 1, vid: testVID, count: 3, minLSN: 5, maxLSN: 9, indexCRC: 0xdeadbeef}
	with := func(edit func(*rawFooter)) []byte {
		r := valid
		edit(&r)
		return r.bytes()
	}
	tests := []struct {
		name    string
		in      []byte
		want    segment.Footer
		wantIs  error
		wantErr string // exact message
	}{
		{name: "valid", in: valid.bytes(), want: segment.Footer{VID: testVID, Count: 3, MinLSN: 5, MaxLSN: 9, IndexCRC: 0xdeadbeef}},
		{name: "one page one lsn", in: with(func(r *rawFooter) { r.count, r.minLSN, r.maxLSN = 1, 1, 1 }), want: segment.Footer{VID: testVID, Count: 1, MinLSN: 1, MaxLSN: 1, IndexCRC: 0xdeadbeef}},
		{name: "largest values", in: with(func(r *rawFooter) { r.count, r.minLSN, r.maxLSN = 1<<32-1, 1, 1<<64-1 }), want: segment.Footer{VID: testVID, Count: 1<<32 - 1, MinLSN: 1, MaxLSN: 1<<64 - 1, IndexCRC: 0xdeadbeef}},
		{name: "bad magic", in: with(func(r *rawFooter) { r.magic = "GRFTSEG2" }), wantIs: segment.ErrCorrupt, wantErr: `segment: corrupt: footer magic "GRFTSEG2", want "GRFTSEG1"`},
		{name: "version 2", in: with(func(r *rawFooter) { r.version = 2 }), wantIs: segment.ErrUnsupported, wantErr: "segment: unsupported format: version 2, want 1"},
		{name: "version 0", in: with(func(r *rawFooter) { r.version = 0 }), wantIs: segment.ErrUnsupported, wantErr: "segment: unsupported format: version 0, want 1"},
		{name: "flags", in: with(func(r *rawFooter) { r.flags = 0x0100 }), wantIs: segment.ErrUnsupported, wantErr: "segment: unsupported format: flags 0x0100, want 0"},
		{name: "reserved", in: with(func(r *rawFooter) { r.reserved = 1 }), wantIs: segment.ErrUnsupported, wantErr: "segment: unsupported format: reserved field 0x0000000000000001, want 0"},
		{name: "zero vid", in: with(func(r *rawFooter) { r.vid = volume.ID{} }), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt: footer volume id has prefix byte 0x00, want 0x80"},
		{name: "count 0", in: with(func(r *rawFooter) { r.count = 0 }), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt: footer count 0"},
		{name: "min lsn 0", in: with(func(r *rawFooter) { r.minLSN = 0 }), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt: footer min lsn 0"},
		{name: "min above max", in: with(func(r *rawFooter) { r.minLSN, r.maxLSN = 9, 5 }), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt: footer min lsn 9 > max lsn 5"},
		{name: "one page two lsns", in: with(func(r *rawFooter) { r.count = 1 }), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt: footer count 1 cannot hold lsns 5 and 9"},
		{name: "truncated", in: valid.bytes()[1:], wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt: footer truncated: got 63 bytes, want 64"},
		{name: "bad checksum", in: func() []byte { b := valid.bytes(); b[63] ^= 1; return b }(), wantIs: segment.ErrCorrupt, wantErr: "segment: corrupt: footer checksum mismatch: stored "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.in) == 64 && tt.wantErr == "" {
				// The reference writer and the package agree byte for byte.
				if got := segment.AppendFooter(nil, tt.want); !bytes.Equal(got, tt.in) {
					t.Fatalf("AppendFooter = %x, reference %x", got, tt.in)
				}
			}
			f, err := segment.DecodeFooter(tt.in)
			if tt.wantErr == "" {
				if err != nil || f != tt.want {
					t.Fatalf("DecodeFooter = %+v, %v; want %+v", f, err, tt.want)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeFooter = %+v, %v; want error %q", f, err, tt.wantErr)
			}
			// A message ending in a space is a prefix (a checksum follows).
			if !strings.HasSuffix(tt.wantErr, " ") && err.Error() != tt.wantErr {
				t.Errorf("error = %q, want exactly %q", err, tt.wantErr)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if tt.wantIs == segment.ErrUnsupported && errors.Is(err, segment.ErrCorrupt) {
				t.Errorf("unsupported-format error %v also wraps ErrCorrupt", err)
			}
			if f != (segment.Footer{}) {
				t.Errorf("footer = %+v on error, want zero", f)
			}
		})
	}
}

func TestDecodeIndex_Invalid(t *testing.T) {
	e := func(idx volume.PageIdx, lsn volume.LSN) segment.Entry {
		return segment.Entry{Idx: idx, LSN: lsn, CRC: uint32(idx)<<16 | uint32(lsn)}
	}
	tests := []struct {
		name     string
		min, max volume.LSN
		entries  []segment.Entry
		wantErr  string // exact message; empty means success
	}{
		{name: "valid", min: 5, max: 9, entries: []segment.Entry{e(1, 5), e(1, 9), e(2, 7)}},
		{name: "same lsn for all", min: 5, max: 5, entries: []segment.Entry{e(1, 5), e(2, 5), e(3, 5)}},
		{name: "largest values", min: 1, max: 1<<64 - 1, entries: []segment.Entry{e(volume.MaxPageIdx, 1), {Idx: volume.MaxPageIdx, LSN: 1<<64 - 1}}},
		{name: "page index 0", min: 5, max: 9, entries: []segment.Entry{e(1, 5), e(1, 9), e(2, 7), e(0, 7)}, wantErr: "segment: corrupt: index entry 3: page index 0"},
		{name: "lsn below range", min: 5, max: 9, entries: []segment.Entry{e(1, 5), e(1, 9), e(2, 4)}, wantErr: "segment: corrupt: index entry 2 (idx 2): lsn 4 outside footer range [5, 9]"},
		{name: "lsn above range", min: 5, max: 9, entries: []segment.Entry{e(1, 5), e(1, 10), e(2, 9)}, wantErr: "segment: corrupt: index entry 1 (idx 1): lsn 10 outside footer range [5, 9]"},
		{name: "duplicate", min: 5, max: 9, entries: []segment.Entry{e(1, 5), e(1, 9), e(1, 9)}, wantErr: "segment: corrupt: index entry 2: duplicate of entry 1 (idx 1, lsn 9)"},
		{name: "duplicate with another crc", min: 5, max: 9, entries: []segment.Entry{e(1, 5), e(1, 9), {Idx: 1, LSN: 9, CRC: 1}}, wantErr: "segment: corrupt: index entry 2: duplicate of entry 1 (idx 1, lsn 9)"},
		{name: "lsns out of order", min: 5, max: 9, entries: []segment.Entry{e(1, 9), e(1, 5)}, wantErr: "segment: corrupt: index entry 1 (idx 1, lsn 5): out of order after entry 0 (idx 1, lsn 9)"},
		{name: "indexes out of order", min: 5, max: 9, entries: []segment.Entry{e(2, 5), e(1, 9)}, wantErr: "segment: corrupt: index entry 1 (idx 1, lsn 9): out of order after entry 0 (idx 2, lsn 5)"},
		{name: "min lsn absent", min: 4, max: 9, entries: []segment.Entry{e(1, 5), e(1, 9)}, wantErr: "segment: corrupt: no index entry has footer min lsn 4"},
		{name: "max lsn absent", min: 5, max: 10, entries: []segment.Entry{e(1, 5), e(1, 9)}, wantErr: "segment: corrupt: no index entry has footer max lsn 10"},
		{name: "footer count 0", min: 5, max: 5, entries: nil, wantErr: "segment: corrupt: footer count 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := rawIndex(tt.entries...)
			if got := segment.AppendIndex(nil, tt.entries); !bytes.Equal(got, raw) {
				t.Fatalf("AppendIndex = %x, reference %x", got, raw)
			}
			f := segment.Footer{VID: testVID, Count: uint32(len(tt.entries)), MinLSN: tt.min, MaxLSN: tt.max, IndexCRC: crc32c(raw)}
			ix, err := segment.DecodeIndex(f, raw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := ix.Entries(); !slicesEqual(got, tt.entries) {
					t.Fatalf("entries = %+v, want %+v", got, tt.entries)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("DecodeIndex error = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			if ix.Len() != 0 {
				t.Errorf("index has %d entries on error", ix.Len())
			}
		})
	}

	t.Run("checksum mismatch", func(t *testing.T) {
		raw := rawIndex(e(1, 5))
		f := segment.Footer{VID: testVID, Count: 1, MinLSN: 5, MaxLSN: 5, IndexCRC: crc32c(raw) ^ 1}
		_, err := segment.DecodeIndex(f, raw)
		want := "segment: corrupt: index checksum mismatch: footer has "
		if !errors.Is(err, segment.ErrCorrupt) || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("DecodeIndex error = %v, want prefix %q", err, want)
		}
	})
}

func slicesEqual(a, b []segment.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestVerifyPage(t *testing.T) {
	page := patternPage(3, 4)
	e := segment.Entry{Idx: 3, LSN: 4, CRC: crc32c(page)}
	tests := []struct {
		name    string
		page    []byte
		wantErr string // exact message; empty means success
	}{
		{name: "good", page: page},
		{name: "short", page: page[:4095], wantErr: "segment: corrupt: page (idx 3, lsn 4): page is 4095 bytes, want 4096"},
		{name: "long", page: append(bytes.Clone(page), 0), wantErr: "segment: corrupt: page (idx 3, lsn 4): page is 4097 bytes, want 4096"},
		{name: "nil", page: nil, wantErr: "segment: corrupt: page (idx 3, lsn 4): page is 0 bytes, want 4096"},
		{name: "zero page", page: volume.ZeroPage(), wantErr: fmt.Sprintf("segment: corrupt: page (idx 3, lsn 4): checksum mismatch: index has %08x, computed %08x", crc32c(page), crc32c(volume.ZeroPage()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := segment.VerifyPage(e, tt.page)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("VerifyPage error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestCorruptRecord_FlipByte flips every byte of a log record, checksum
// included, and checks that DecodeRecord reports corruption.
func TestCorruptRecord_FlipByte(t *testing.T) {
	good := encodeRecord(t, goldenRecord())
	for pos := range good {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(good)
			b[pos] ^= mask
			r, err := segment.DecodeRecord(b)
			if !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: DecodeRecord error = %v, want ErrCorrupt", pos, mask, err)
			}
			if r.Commits != nil {
				t.Fatalf("byte %d ^ %#x: %d commits returned with an error", pos, mask, len(r.Commits))
			}
		}
	}
}

// TestCorruptRecord_Truncated checks that every proper prefix and suffix of
// a log record, and the record with a byte appended, are rejected.
func TestCorruptRecord_Truncated(t *testing.T) {
	for _, rec := range []segment.Record{goldenRecord(), {VID: testVID, From: 1, To: 1, Commits: []segment.RecordCommit{recordCommit(1, 0)}}} {
		good := encodeRecord(t, rec)
		for n := range len(good) {
			if _, err := segment.DecodeRecord(good[:n]); !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("DecodeRecord(first %d bytes) error = %v, want ErrCorrupt", n, err)
			}
			if _, err := segment.DecodeRecord(good[n+1:]); !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("DecodeRecord(last %d bytes) error = %v, want ErrCorrupt", len(good)-n-1, err)
			}
		}
		for _, b := range []byte{0, 0xff} {
			if _, err := segment.DecodeRecord(append(bytes.Clone(good), b)); !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("DecodeRecord(record + %#x) error = %v, want ErrCorrupt", b, err)
			}
		}
	}
}

func TestCorruptRecord_Messages(t *testing.T) {
	good := encodeRecord(t, goldenRecord())
	flip := func(pos int) []byte {
		b := bytes.Clone(good)
		b[pos] ^= 0xff
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string // prefix of the message
	}{
		{name: "magic", in: flip(0), wantErr: `segment: corrupt log record: magic "\xb8RFTLOG1", want "GRFTLOG1"`},
		{name: "version", in: flip(9), wantErr: "segment: corrupt log record: checksum mismatch: stored "},
		{name: "graft byte", in: flip(130), wantErr: "segment: corrupt log record: checksum mismatch: stored "},
		{name: "checksum", in: flip(len(good) - 1), wantErr: "segment: corrupt log record: checksum mismatch: stored "},
		{name: "leading byte dropped", in: good[1:], wantErr: `segment: corrupt log record: magic "RFTLOG1\x00", want "GRFTLOG1"`},
		{name: "short", in: good[:67], wantErr: "segment: corrupt log record: truncated: got 67 bytes, want at least 68"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := segment.DecodeRecord(tt.in)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("DecodeRecord error = %v, want ErrCorrupt with prefix %q", err, tt.wantErr)
			}
		})
	}
}
