package segment

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// these, so callers test with errors.Is and map them to wire codes in one
// place. Some also wrap the volume error they stem from: Builder.Add's
// page-size error wraps volume.ErrInvalidPage, DecodeRecord's graft errors
// wrap volume.ErrInvalidPageSet, and ParseVolumeKey's and ParseLogKey's
// volume-id errors wrap volume.ErrInvalidID.
// The exceptions are I/O errors of the caller's own reader or writer (NewID's
// rand, Builder.WriteTo's w), which are wrapped as they are.
var (
	// ErrCorrupt reports bytes that are not a valid segment or log record,
	// or not the part of one they were taken for: a bad magic, a checksum
	// mismatch, a wrong length, an unsorted or out-of-range index entry, a
	// page that does not match its index entry, a log record breaking one of
	// the invariants of Record. The message says what is wrong and where, for
	// example "segment: corrupt: index entry 3: page index 0" or "segment:
	// corrupt log record: commits[3] (lsn 17): lsn 18, want 17".
	ErrCorrupt = errors.New("segment: corrupt")

	// ErrUnsupported reports a footer or log record whose checksum is valid
	// but which announces a format this package does not read: a version
	// other than 1, a non-zero flags field, or a footer's non-zero reserved
	// field. Such an object was written by a newer writer; it is not
	// corrupt.
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

	// ErrInvalidVolume reports a volume ID whose prefix byte is not
	// volume.IDPrefix: a Builder's or a Record's, which would encode an
	// object no reader accepts, or the one DecodeRecord finds in a log
	// record whose checksum is valid.
	ErrInvalidVolume = errors.New("segment: invalid volume id")

	// ErrInvalidRecord reports a Record that Record.AppendBinary refuses to
	// encode because DecodeRecord would reject it: the message names the
	// broken invariant as DecodeRecord's ErrCorrupt message would, for
	// example "segment: invalid log record: commits[3] (lsn 17): lsn 18,
	// want 17". An invalid volume ID wraps ErrInvalidVolume instead.
	ErrInvalidRecord = errors.New("segment: invalid log record")

	// ErrInvalidCheckpoint reports a Checkpoint that
	// Checkpoint.AppendBinary refuses to encode because DecodeCheckpoint
	// would reject it; the message names the broken invariant.
	ErrInvalidCheckpoint = errors.New("segment: invalid checkpoint")

	// ErrInvalidKey reports an object key that ParseVolumeKey or ParseLogKey
	// rejects: outside "volumes/", an invalid or non-canonical volume ID, or
	// a log key whose LSN is not exactly 20 decimal digits or is 0. The
	// message quotes the key.
	ErrInvalidKey = errors.New("segment: invalid object key")
)
