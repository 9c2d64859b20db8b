package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/RoaringBitmap/roaring/v2"
)

// Constants of the portable Roaring format
// (https://github.com/RoaringBitmap/RoaringFormatSpec).
const (
	roaringCookieNoRuns = 12346 // uint32 cookie, then uint32 container count
	roaringCookieRuns   = 12347 // low 16 bits; high 16 bits are count-1
	roaringMaxKeys      = 1 << 16
	roaringNoOffsetMin  = 4    // with runs, offsets are present from this many containers
	roaringArrayMax     = 4096 // containers above this cardinality are bitmaps
	roaringBitmapBytes  = 8192
)

// DecodePageSet decodes a PageSet from the portable Roaring format, as
// written by PageSet.MarshalBinary or any other Roaring implementation.
//
// It rejects, wrapping ErrInvalidPageSet: input that is truncated or
// malformed, trailing bytes after the bitmap, and a set containing the
// invalid index 0 ("page index 0 is invalid").
//
// DecodePageSet never panics. roaring's own reader trusts its input (it does
// not check container contents or offsets, and its Validate is quadratic in
// the number of runs), so DecodePageSet first checks the whole encoding in one
// linear pass: container keys strictly ascending, offsets (when present)
// matching the actual layout, array values strictly ascending, bitmap
// cardinalities matching their population counts, runs sorted, in range,
// disjoint and non-adjacent, and run cardinalities matching their headers.
// Only then does roaring decode it, copying the bytes (the set does not
// alias b) under a recover. Every container's payload must be present in b,
// so the decoded set's memory is proportional to len(b): a small input
// cannot make a large allocation. Len can still reach 2^32-1 through runs;
// see Slice.
func DecodePageSet(b []byte) (ps PageSet, err error) {
	if err := checkPortableRoaring(b); err != nil {
		return PageSet{}, err
	}

	defer func() {
		if r := recover(); r != nil {
			ps, err = PageSet{}, fmt.Errorf("%w: roaring decoder panicked: %v", ErrInvalidPageSet, r)
		}
	}()
	bm := roaring.New()
	n, err := bm.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return PageSet{}, fmt.Errorf("%w: %w", ErrInvalidPageSet, err)
	}
	if n != int64(len(b)) {
		// Unreachable after checkPortableRoaring; kept as a cross-check.
		return PageSet{}, fmt.Errorf("%w: roaring read %d of %d bytes", ErrInvalidPageSet, n, len(b))
	}
	if bm.Contains(0) {
		// Unreachable after checkPortableRoaring; kept as a cross-check.
		return PageSet{}, fmt.Errorf("%w: page index 0 is invalid", ErrInvalidPageSet)
	}
	if bm.IsEmpty() {
		return PageSet{}, nil
	}
	return PageSet{bm: bm}, nil
}

// portableReader reads little-endian fields from a portable Roaring
// encoding, tracking the offset for error messages.
type portableReader struct {
	b   []byte
	off int
}

func (r *portableReader) next(n int, what string) ([]byte, error) {
	if n > len(r.b)-r.off {
		return nil, fmt.Errorf("%w: truncated: %s needs %d bytes at offset %d, %d left", ErrInvalidPageSet, what, n, r.off, len(r.b)-r.off)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

// checkPortableRoaring validates b as a complete portable Roaring encoding of
// a set without index 0, in time linear in len(b) and without allocating.
func checkPortableRoaring(b []byte) error {
	r := portableReader{b: b}
	p, err := r.next(4, "cookie")
	if err != nil {
		return err
	}
	cookie := binary.LittleEndian.Uint32(p)

	var n int        // number of containers
	var runs []byte  // is-run bitmap, nil without runs
	var offsets bool // whether the offset header is present
	switch {
	case cookie == roaringCookieNoRuns:
		p, err := r.next(4, "container count")
		if err != nil {
			return err
		}
		count := binary.LittleEndian.Uint32(p)
		if count > roaringMaxKeys {
			return fmt.Errorf("%w: %d containers, at most %d", ErrInvalidPageSet, count, roaringMaxKeys)
		}
		n, offsets = int(count), true
	case cookie&0xFFFF == roaringCookieRuns:
		n = int(cookie>>16) + 1
		if runs, err = r.next((n+7)/8, "run bitmap"); err != nil {
			return err
		}
		offsets = n >= roaringNoOffsetMin
	default:
		return fmt.Errorf("%w: bad cookie 0x%08x", ErrInvalidPageSet, cookie)
	}

	header, err := r.next(4*n, "descriptive header")
	if err != nil {
		return err
	}
	var offsetHeader []byte
	if offsets {
		if offsetHeader, err = r.next(4*n, "offset header"); err != nil {
			return err
		}
	}

	for i := 0; i < n; i++ {
		key := binary.LittleEndian.Uint16(header[4*i:])
		card := int(binary.LittleEndian.Uint16(header[4*i+2:])) + 1
		if i > 0 && key <= binary.LittleEndian.Uint16(header[4*(i-1):]) {
			return fmt.Errorf("%w: container %d: key %d not above previous key %d", ErrInvalidPageSet, i, key, binary.LittleEndian.Uint16(header[4*(i-1):]))
		}
		if offsets {
			if off := binary.LittleEndian.Uint32(offsetHeader[4*i:]); int64(off) != int64(r.off) {
				return fmt.Errorf("%w: container %d: offset %d, actual %d", ErrInvalidPageSet, i, off, r.off)
			}
		}
		var hasZero bool // whether the container holds low bits 0
		switch {
		case runs != nil && runs[i/8]&(1<<(i%8)) != 0:
			hasZero, err = checkRunContainer(&r, i, card)
		case card > roaringArrayMax:
			hasZero, err = checkBitmapContainer(&r, i, card)
		default:
			hasZero, err = checkArrayContainer(&r, i, card)
		}
		if err != nil {
			return err
		}
		if key == 0 && hasZero {
			return fmt.Errorf("%w: page index 0 is invalid", ErrInvalidPageSet)
		}
	}
	if rest := len(b) - r.off; rest != 0 {
		return fmt.Errorf("%w: %d trailing bytes after %d-byte bitmap", ErrInvalidPageSet, rest, r.off)
	}
	return nil
}

// checkRunContainer checks a run container of the given header cardinality
// and reports whether it holds the low value 0.
func checkRunContainer(r *portableReader, i, card int) (bool, error) {
	p, err := r.next(2, "run count")
	if err != nil {
		return false, err
	}
	nr := int(binary.LittleEndian.Uint16(p))
	if nr == 0 {
		return false, fmt.Errorf("%w: container %d: run container with no runs", ErrInvalidPageSet, i)
	}
	p, err = r.next(4*nr, "runs")
	if err != nil {
		return false, err
	}
	total, prevEnd := 0, -2
	for j := 0; j < nr; j++ {
		start := int(binary.LittleEndian.Uint16(p[4*j:]))
		end := start + int(binary.LittleEndian.Uint16(p[4*j+2:]))
		if end > 0xFFFF {
			return false, fmt.Errorf("%w: container %d: run %d ends at %d, past 65535", ErrInvalidPageSet, i, j, end)
		}
		if start <= prevEnd+1 {
			return false, fmt.Errorf("%w: container %d: run %d starts at %d, not after previous run's end %d plus a gap", ErrInvalidPageSet, i, j, start, prevEnd)
		}
		total += end - start + 1
		prevEnd = end
	}
	if total != card {
		return false, fmt.Errorf("%w: container %d: runs hold %d values, header says %d", ErrInvalidPageSet, i, total, card)
	}
	return binary.LittleEndian.Uint16(p) == 0, nil
}

// checkBitmapContainer checks a bitmap container of the given header
// cardinality and reports whether it holds the low value 0.
func checkBitmapContainer(r *portableReader, i, card int) (bool, error) {
	p, err := r.next(roaringBitmapBytes, "bitmap container")
	if err != nil {
		return false, err
	}
	count := 0
	for w := 0; w < len(p); w += 8 {
		count += bits.OnesCount64(binary.LittleEndian.Uint64(p[w:]))
	}
	if count != card {
		return false, fmt.Errorf("%w: container %d: bitmap holds %d values, header says %d", ErrInvalidPageSet, i, count, card)
	}
	return p[0]&1 != 0, nil
}

// checkArrayContainer checks an array container of the given cardinality and
// reports whether it holds the low value 0.
func checkArrayContainer(r *portableReader, i, card int) (bool, error) {
	p, err := r.next(2*card, "array container")
	if err != nil {
		return false, err
	}
	for j := 1; j < card; j++ {
		if prev, v := binary.LittleEndian.Uint16(p[2*j-2:]), binary.LittleEndian.Uint16(p[2*j:]); v <= prev {
			return false, fmt.Errorf("%w: container %d: array value %d not above previous %d", ErrInvalidPageSet, i, v, prev)
		}
	}
	return binary.LittleEndian.Uint16(p) == 0, nil
}
