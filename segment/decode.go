package segment

import (
	"fmt"
)

// VerifyPage checks page, fetched at the PageRange of entry e's position,
// against e: it must be exactly PageSize bytes with CRC-32C e.CRC. Errors
// wrap ErrCorrupt:
//
//	segment: corrupt: page (idx 7, lsn 12): checksum mismatch: index has 8a3f0c21, computed 0d9e44b0
func VerifyPage(e Entry, page []byte) error {
	if problem := checkPage(e, page); problem != "" {
		return fmt.Errorf("%w: page (idx %d, lsn %d): %s", ErrCorrupt, e.Idx, e.LSN, problem)
	}
	return nil
}

// checkPage says what is wrong with page, or returns "".
func checkPage(e Entry, page []byte) string {
	if len(page) != PageSize {
		return fmt.Sprintf("page is %d bytes, want %d", len(page), PageSize)
	}
	if got := checksum(page); got != e.CRC {
		return fmt.Sprintf("checksum mismatch: index has %08x, computed %08x", e.CRC, got)
	}
	return ""
}

// Decode parses a whole segment: the footer, the index, and every page,
// verified against its index entry. It is meant for tests, recovery tools
// and small segments; readers of large segments fetch byte ranges and use
// DecodeFooter, DecodeIndex and VerifyPage.
//
// b must be exactly the segment (Size of its footer). Errors wrap ErrCorrupt
// (or ErrUnsupported, from DecodeFooter); a bad page is named by its
// position: "segment: corrupt: page 2 (idx 7, lsn 12): checksum mismatch:
// ...". The returned Index does not alias b.
func Decode(b []byte) (Footer, Index, error) {
	f, err := DecodeFooter(b)
	if err != nil {
		return Footer{}, Index{}, err
	}
	if size := Size(f); int64(len(b)) != size {
		return Footer{}, Index{}, fmt.Errorf("%w: segment is %d bytes, footer says %d (%d pages)", ErrCorrupt, len(b), size, f.Count)
	}
	off, n := IndexRange(f)
	ix, err := DecodeIndex(f, b[off:off+n])
	if err != nil {
		return Footer{}, Index{}, err
	}
	for i, e := range ix.entries {
		off, n := PageRange(i)
		if problem := checkPage(e, b[off:off+n]); problem != "" {
			return Footer{}, Index{}, fmt.Errorf("%w: page %d (idx %d, lsn %d): %s", ErrCorrupt, i, e.Idx, e.LSN, problem)
		}
	}
	return f, ix, nil
}
