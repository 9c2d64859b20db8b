package objstore

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Store is a flat key space under a prefix. Keys are relative,
// '/'-separated, never starting with '/' (see the package documentation).
// A Store is safe for concurrent use.
type Store interface {
	// Put creates or replaces key atomically.
	Put(ctx context.Context, key string, data []byte) error
	// PutIfAbsent creates key only if it does not exist (S3: If-None-Match:
	// *), atomically. It returns ErrExists if it does.
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	// Get returns the whole object, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns exactly n bytes of key starting at byte off, or an
	// error: ErrNotFound if key does not exist, ErrRange if off or n is
	// negative or off+n is beyond the object. n == 0 returns an empty slice
	// when key exists and off is at most its size.
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// List returns every object whose key starts with prefix, sorted by key
	// (bytewise), paginating internally. The empty prefix lists the store.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases the store's resources. Calls after Close return
	// ErrClosed; Close is idempotent.
	Close() error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's key, relative to the store's prefix.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// Modified is when the object was last written, as the backend reports
	// it (S3: LastModified, second precision; file: the file's mtime).
	Modified time.Time
}

const (
	// MaxKeyLen is the longest valid key in bytes. S3 allows 1024 bytes
	// for the whole key; the rest is left for the store's prefix.
	MaxKeyLen = 768
	// MaxSegmentLen is the longest valid key segment (the text between two
	// '/') in bytes: a file name on most file systems.
	MaxSegmentLen = 255
)

// ValidateKey reports whether key is a valid key, wrapping ErrInvalidKey
// with the reason if it is not.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, over %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	if err := checkChars(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := checkSegment(key, seg); err != nil {
			return err
		}
	}
	return nil
}

// validatePrefix checks a List prefix: a key prefix may end in '/' or in a
// partial segment, but its complete segments follow the key rules.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLen {
		return fmt.Errorf("%w: prefix of %d bytes, over %d", ErrInvalidKey, len(prefix), MaxKeyLen)
	}
	if err := checkChars(prefix); err != nil {
		return err
	}
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return nil
	}
	for seg := range strings.SplitSeq(prefix[:i], "/") {
		if err := checkSegment(prefix, seg); err != nil {
			return err
		}
	}
	return nil
}

func checkChars(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidKey, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %q has control character %#x", ErrInvalidKey, s, c)
		}
	}
	return nil
}

func checkSegment(key, seg string) error {
	switch {
	case seg == "":
		return fmt.Errorf("%w: %q has an empty segment", ErrInvalidKey, key)
	case seg == "." || seg == "..":
		return fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, key, seg)
	case len(seg) > MaxSegmentLen:
		return fmt.Errorf("%w: %q has a segment of %d bytes, over %d", ErrInvalidKey, key, len(seg), MaxSegmentLen)
	}
	return nil
}
