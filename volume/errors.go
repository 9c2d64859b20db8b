package volume

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// these (ValidateCommit's page-size error wraps ErrInvalidPage as well), so
// callers test with errors.Is and map them to wire codes in one place.
var (
	// ErrInvalidID reports a malformed volume ID: wrong length, a character
	// outside the base58 alphabet, or a prefix byte other than 0x80.
	ErrInvalidID = errors.New("volume: invalid id")

	// ErrInvalidPage reports page data that is not exactly PageSize bytes.
	ErrInvalidPage = errors.New("volume: invalid page")

	// ErrInvalidCommit reports a commit that ValidateCommit rejects: an
	// invalid or out-of-range page index, a duplicate index, a page of the
	// wrong size, or too many pages.
	ErrInvalidCommit = errors.New("volume: invalid commit")

	// ErrInvalidPageSet reports a serialized PageSet that is malformed,
	// truncated, followed by trailing bytes, or contains page index 0.
	ErrInvalidPageSet = errors.New("volume: invalid page set")

	// ErrInvalidHash reports a commit hash that is not 32 bytes, or whose
	// text form is not 64 lowercase hex characters.
	ErrInvalidHash = errors.New("volume: invalid hash")
)
