package volume

import (
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/mr-tron/base58"
)

// IDPrefix is the first byte of every valid ID.
const IDPrefix = 0x80

// IDTextLen is the length of an ID's text form: every valid ID encodes to
// exactly this many base58 characters (58^21 < 2^127 <= id < 2^128 < 58^22).
const IDTextLen = 22

// maxIDMillis is the largest unix-millisecond value that fits in an ID's
// 48-bit time field (a date in the year 10889).
const maxIDMillis = 1<<48 - 1

// ID is a 16-byte GID naming a volume.
//
// Layout: byte 0 is the prefix 0x80 (IDPrefix), bytes 1..6 are the creation
// time in unix milliseconds as a 48-bit big-endian integer, and bytes 7..15
// are 9 random bytes. IDs therefore sort by creation time (to the millisecond)
// when compared bytewise.
//
// The text form is base58 with the Bitcoin alphabet and is always exactly 22
// characters for a valid ID. The zero ID is not valid; it means "no volume".
type ID [16]byte

// NewID returns a new ID for the time now, with 9 bytes read from rand.
//
// It fails, wrapping ErrInvalidID, if now is before the unix epoch or past
// the 48-bit millisecond range (year 10889), and returns the reader's error
// if rand cannot supply 9 bytes.
func NewID(now time.Time, rand io.Reader) (ID, error) {
	id, err := NewGID(IDPrefix, now, rand, ErrInvalidID)
	return ID(id), err
}

// MustNewID returns NewID(time.Now(), crypto/rand.Reader).
//
// It panics if crypto/rand fails, which the Go runtime treats as fatal
// anyway (since Go 1.24 crypto/rand never returns an error on supported
// platforms). The current time is always inside the 48-bit range.
func MustNewID() ID {
	id, err := NewID(time.Now(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return id
}

// ParseID parses the 22-character base58 text form of an ID.
//
// Errors wrap ErrInvalidID and say what is wrong: the length (in characters),
// the first character outside the base58 alphabet and its position (0-based,
// in characters), a value that does not fit in 16 bytes, or a prefix byte
// other than 0x80. ParseID accepts exactly the strings that ID.String
// produces for valid IDs, so the text form is canonical.
func ParseID(s string) (ID, error) {
	id, err := ParseGID(IDPrefix, s, ErrInvalidID)
	return ID(id), err
}

// IDFromBytes returns the ID held in b, which must be 16 bytes starting with
// the prefix 0x80. Errors wrap ErrInvalidID.
func IDFromBytes(b []byte) (ID, error) {
	id, err := GIDFromBytes(IDPrefix, b, ErrInvalidID)
	return ID(id), err
}

// String returns the base58 text form: 22 characters for a valid ID. For an
// invalid ID (such as the zero ID) it returns the base58 encoding of the
// bytes anyway, which ParseID rejects.
func (id ID) String() string {
	return base58.Encode(id[:])
}

// Time returns the creation time stored in the ID, in UTC, to the
// millisecond.
func (id ID) Time() time.Time {
	return GIDTime(id)
}

// IsZero reports whether id is the zero ID, which means "no volume".
func (id ID) IsZero() bool {
	return id == ID{}
}

// Valid reports whether id has the 0x80 prefix byte. It does not judge the
// time or random bytes: every such ID round-trips through its text form.
func (id ID) Valid() bool {
	return id[0] == IDPrefix
}

// MarshalText implements encoding.TextMarshaler. It fails, wrapping
// ErrInvalidID, for an invalid ID (including the zero ID), so that it never
// emits text that UnmarshalText would reject; use the `omitzero` JSON option
// for optional IDs.
func (id ID) MarshalText() ([]byte, error) {
	if !id.Valid() {
		return nil, fmt.Errorf("%w: prefix byte 0x%02x, want 0x%02x", ErrInvalidID, id[0], IDPrefix)
	}
	return []byte(id.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseID. On error
// id is left unchanged.
func (id *ID) UnmarshalText(text []byte) error {
	parsed, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}
