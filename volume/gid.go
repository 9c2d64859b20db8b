package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/mr-tron/base58"
)

// GIDs are the 16-byte IDs of every kind (volumes 0x80, segments 0x81):
// a prefix byte, 48-bit big-endian unix milliseconds, 9 random bytes, with
// a 22-character base58 text form. The functions below are shared by the
// ID types; errs is the kind's sentinel, wrapped by every error.

// NewGID mints a GID with the given prefix.
func NewGID(prefix byte, now time.Time, rand io.Reader, errs error) ([16]byte, error) {
	ms := now.UnixMilli()
	if ms < 0 || ms > maxIDMillis {
		return [16]byte{}, fmt.Errorf("%w: time %s is outside the 48-bit unix-millisecond range", errs, now.UTC().Format(time.RFC3339Nano))
	}
	var id [16]byte
	id[0] = prefix
	putUint48(id[1:7], uint64(ms))
	if _, err := io.ReadFull(rand, id[7:]); err != nil {
		return [16]byte{}, fmt.Errorf("read id random bytes: %w", err)
	}
	return id, nil
}

// ParseGID parses the 22-character base58 text form of a GID with prefix.
func ParseGID(prefix byte, s string, errs error) ([16]byte, error) {
	if n := utf8.RuneCountInString(s); n != IDTextLen {
		return [16]byte{}, fmt.Errorf("%w: got %d chars, want %d", errs, n, IDTextLen)
	}
	pos := 0
	for _, r := range s {
		if r >= utf8.RuneSelf || !isBase58(byte(r)) {
			return [16]byte{}, fmt.Errorf("%w: bad base58 character %q at position %d", errs, r, pos)
		}
		pos++
	}
	b, err := base58.Decode(s)
	if err != nil {
		// Unreachable: every character was checked above.
		return [16]byte{}, fmt.Errorf("%w: %s: %w", errs, s, err)
	}
	// Leading '1' digits decode to leading zero bytes: compare values.
	b = bytes.TrimLeft(b, "\x00")
	var id [16]byte
	if len(b) > len(id) {
		return [16]byte{}, fmt.Errorf("%w: %s overflows %d bytes", errs, s, len(id))
	}
	copy(id[len(id)-len(b):], b)
	if id[0] != prefix {
		return [16]byte{}, fmt.Errorf("%w: %s has prefix byte 0x%02x, want 0x%02x", errs, s, id[0], prefix)
	}
	return id, nil
}

// GIDFromBytes returns the GID held in b: 16 bytes starting with prefix.
func GIDFromBytes(prefix byte, b []byte, errs error) ([16]byte, error) {
	var id [16]byte
	if len(b) != len(id) {
		return [16]byte{}, fmt.Errorf("%w: got %d bytes, want %d", errs, len(b), len(id))
	}
	copy(id[:], b)
	if id[0] != prefix {
		return [16]byte{}, fmt.Errorf("%w: prefix byte 0x%02x, want 0x%02x", errs, id[0], prefix)
	}
	return id, nil
}

// GIDTime returns the creation time stored in a GID, in UTC.
func GIDTime(id [16]byte) time.Time {
	return time.UnixMilli(int64(uint48(id[1:7]))).UTC()
}

func isBase58(c byte) bool {
	switch {
	case c >= '1' && c <= '9':
		return true
	case c >= 'A' && c <= 'Z':
		return c != 'I' && c != 'O'
	case c >= 'a' && c <= 'z':
		return c != 'l'
	}
	return false
}

func putUint48(b []byte, v uint64) {
	_ = b[5]
	b[0] = byte(v >> 40)
	b[1] = byte(v >> 32)
	binary.BigEndian.PutUint32(b[2:], uint32(v))
}

func uint48(b []byte) uint64 {
	_ = b[5]
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(binary.BigEndian.Uint32(b[2:]))
}
