package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/graft-cluster/graft/volume"
)

// Format constants. See the package documentation for the layout.
const (
	// Magic starts every footer.
	Magic = "GRFTSEG1"

	// Version is the format version this package writes and reads.
	Version = 1

	// FooterSize is the size of the footer at the end of every segment.
	FooterSize = 64

	// EntrySize is the size of one index entry.
	EntrySize = 16

	// PageSize is the size of one page in the pages region.
	PageSize = volume.PageSize
)

// Footer field offsets, relative to the start of the footer.
const (
	offMagic    = 0  // [8]byte
	offVersion  = 8  // u16
	offFlags    = 10 // u16
	offVID      = 12 // [16]byte
	offCount    = 28 // u32
	offMinLSN   = 32 // u64
	offMaxLSN   = 40 // u64
	offIndexCRC = 48 // u32
	offReserved = 52 // u64
	offCRC      = 60 // u32, over bytes [0, 60)
)

// castagnoli is the CRC-32C table for every checksum of the format.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Footer is the decoded fixed-size trailer of a segment. It names the volume,
// counts the page versions, bounds their LSNs and checksums the index.
type Footer struct {
	// VID is the volume every page version of the segment belongs to.
	VID volume.ID
	// Count is the number of page versions: pages in the pages region and
	// entries in the index. It is at least 1.
	Count uint32
	// MinLSN and MaxLSN are the smallest and largest LSN of any index entry;
	// 1 <= MinLSN <= MaxLSN, and both occur in the index.
	MinLSN, MaxLSN volume.LSN
	// IndexCRC is the CRC-32C of the whole index region.
	IndexCRC uint32
}

// Size returns the total size in bytes of the segment f describes.
func Size(f Footer) int64 {
	return int64(f.Count)*(PageSize+EntrySize) + FooterSize
}

// IndexRange returns the byte range of the index in the segment f
// describes: it starts right after the pages, at Count*PageSize, and is
// Count*EntrySize bytes long.
func IndexRange(f Footer) (off, n int64) {
	return int64(f.Count) * PageSize, int64(f.Count) * EntrySize
}

// FooterRange returns the byte range of the footer in a segment of size
// bytes: its last FooterSize bytes. An object store suffix range
// ("bytes=-64") fetches the same bytes without knowing the size.
func FooterRange(size int64) (off, n int64) {
	return size - FooterSize, FooterSize
}

// PageRange returns the byte range of the i-th page (the page of the i-th
// index entry, 0-based, as returned by Index.Lookup): i*PageSize, PageSize
// bytes long.
func PageRange(i int) (off, n int64) {
	return int64(i) * PageSize, PageSize
}

// DecodeFooter decodes the footer held in the last FooterSize bytes of tail;
// tail may be longer (any suffix of the segment, or all of it).
//
// It checks, in this order, and wraps ErrCorrupt unless noted: the length,
// the magic, the footer checksum, the version, flags and reserved fields
// (ErrUnsupported: a valid checksum means a newer writer, not damage), the
// volume ID's prefix byte, Count >= 1, 1 <= MinLSN <= MaxLSN, and Count >= 2
// when MinLSN < MaxLSN (both bounds are LSNs of distinct index entries).
func DecodeFooter(tail []byte) (Footer, error) {
	if len(tail) < FooterSize {
		return Footer{}, fmt.Errorf("%w: footer truncated: got %d bytes, want %d", ErrCorrupt, len(tail), FooterSize)
	}
	b := tail[len(tail)-FooterSize:]
	if string(b[offMagic:offMagic+len(Magic)]) != Magic {
		return Footer{}, fmt.Errorf("%w: footer magic %q, want %q", ErrCorrupt, b[offMagic:offMagic+len(Magic)], Magic)
	}
	if got, want := checksum(b[:offCRC]), binary.BigEndian.Uint32(b[offCRC:]); got != want {
		return Footer{}, fmt.Errorf("%w: footer checksum mismatch: stored %08x, computed %08x", ErrCorrupt, want, got)
	}
	if v := binary.BigEndian.Uint16(b[offVersion:]); v != Version {
		return Footer{}, fmt.Errorf("%w: version %d, want %d", ErrUnsupported, v, Version)
	}
	if fl := binary.BigEndian.Uint16(b[offFlags:]); fl != 0 {
		return Footer{}, fmt.Errorf("%w: flags 0x%04x, want 0", ErrUnsupported, fl)
	}
	if r := binary.BigEndian.Uint64(b[offReserved:]); r != 0 {
		return Footer{}, fmt.Errorf("%w: reserved field 0x%016x, want 0", ErrUnsupported, r)
	}
	var f Footer
	copy(f.VID[:], b[offVID:offVID+len(f.VID)])
	f.Count = binary.BigEndian.Uint32(b[offCount:])
	f.MinLSN = volume.LSN(binary.BigEndian.Uint64(b[offMinLSN:]))
	f.MaxLSN = volume.LSN(binary.BigEndian.Uint64(b[offMaxLSN:]))
	f.IndexCRC = binary.BigEndian.Uint32(b[offIndexCRC:])
	if err := f.check(); err != nil {
		return Footer{}, err
	}
	return f, nil
}

// check validates the footer's fields against each other. Errors wrap
// ErrCorrupt.
func (f Footer) check() error {
	switch {
	case !f.VID.Valid():
		return fmt.Errorf("%w: footer volume id has prefix byte 0x%02x, want 0x%02x", ErrCorrupt, f.VID[0], volume.IDPrefix)
	case f.Count == 0:
		return fmt.Errorf("%w: footer count 0", ErrCorrupt)
	case f.MinLSN == 0:
		return fmt.Errorf("%w: footer min lsn 0", ErrCorrupt)
	case f.MinLSN > f.MaxLSN:
		return fmt.Errorf("%w: footer min lsn %d > max lsn %d", ErrCorrupt, f.MinLSN, f.MaxLSN)
	case f.MinLSN < f.MaxLSN && f.Count < 2:
		return fmt.Errorf("%w: footer count %d cannot hold lsns %d and %d", ErrCorrupt, f.Count, f.MinLSN, f.MaxLSN)
	}
	return nil
}

// appendFooter appends the FooterSize-byte encoding of f to dst.
func appendFooter(dst []byte, f Footer) []byte {
	start := len(dst)
	dst = append(dst, Magic...)
	dst = binary.BigEndian.AppendUint16(dst, Version)
	dst = binary.BigEndian.AppendUint16(dst, 0) // flags
	dst = append(dst, f.VID[:]...)
	dst = binary.BigEndian.AppendUint32(dst, f.Count)
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.MinLSN))
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.MaxLSN))
	dst = binary.BigEndian.AppendUint32(dst, f.IndexCRC)
	dst = binary.BigEndian.AppendUint64(dst, 0) // reserved
	return binary.BigEndian.AppendUint32(dst, checksum(dst[start:]))
}
