package segment

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// these (Builder.Add's page-size error wraps volume.ErrInvalidPage as well),
// so callers test with errors.Is and map them to wire codes in one place.
// The exceptions are I/O errors of the caller's own reader or writer (NewID's
// rand, Builder.WriteTo's w), which are wrapped as they are.
var (
	// ErrCorrupt reports bytes that are not a valid segment, or not the part
	// of one they were taken for: a bad magic, a checksum mismatch, a wrong
	// length, an unsorted or out-of-range index entry, a page that does not
	// match its index entry. The message says what is wrong and where, for
	// example "segment: corrupt: index entry 3: page index 0".
	ErrCorrupt = errors.New("segment: corrupt")

	// ErrUnsupported reports a footer whose checksum is valid but which
	// announces a format this package does not read: a version other than
	// 1, a non-zero flags field, or a non-zero reserved field. Such a segment
	// was written by a newer writer; it is not corrupt.
	ErrUnsupported = errors.New("segment: unsupported format")

	// ErrInvalidID reports a malformed segment ID: wrong length, a character
	// outside the base58 alphabet, a prefix byte other than 0x81, or a time
	// outside the 48-bit millisecond range.
	ErrInvalidID = errors.New("segment: invalid id")

	// ErrInvalidPage reports a page version that Builder.Add rejects: page
	// data that is not exactly volume.PageSize bytes, page index 0, LSN 0, a
	// (page index, LSN) pair already added, or a builder already holding the
	// maximum number of page versions.
	ErrInvalidPage = errors.New("segment: invalid page")

	// ErrEmpty reports an attempt to encode a Builder holding no pages: a
	// segment always holds at least one page version.
	ErrEmpty = errors.New("segment: empty")

	// ErrInvalidVolume reports a Builder whose volume ID is not valid (its
	// prefix byte is not volume.IDPrefix), so its segment could not be
	// decoded.
	ErrInvalidVolume = errors.New("segment: invalid volume id")
)
