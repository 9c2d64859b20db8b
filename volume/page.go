package volume

import (
	"bytes"
	"fmt"
	"math"
)

// PageSize is the size of every page in bytes.
const PageSize = 4096

// MaxPageIdx is the largest valid page index.
const MaxPageIdx = math.MaxUint32

// PageIdx is the 1-based index of a page in a volume. The valid range is
// [1, MaxPageIdx]; 0 is invalid and never stored.
type PageIdx uint32

// Valid reports whether p is a valid page index (not 0).
func (p PageIdx) Valid() bool {
	return p != 0
}

// LSN is a log sequence number: per volume, starting at 1 and increasing by
// exactly 1 per commit (gap-free). LSN 0 means "no commits yet".
type LSN uint64

// zeroPage is the all-zero page that IsZeroPage compares against. It is never
// handed out: ZeroPage returns a copy.
var zeroPage [PageSize]byte

// ValidatePage checks that data is exactly PageSize bytes. The error wraps
// ErrInvalidPage and gives the length.
func ValidatePage(data []byte) error {
	if len(data) != PageSize {
		return fmt.Errorf("%w: page is %d bytes, want %d", ErrInvalidPage, len(data), PageSize)
	}
	return nil
}

// IsZeroPage reports whether data is an empty page: exactly PageSize bytes,
// all zero. Data of any other length is not a page and reports false.
func IsZeroPage(data []byte) bool {
	return bytes.Equal(data, zeroPage[:])
}

// ZeroPage returns a fresh zeroed PageSize-byte slice the caller owns.
func ZeroPage() []byte {
	return make([]byte, PageSize)
}
