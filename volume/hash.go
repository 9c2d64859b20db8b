package volume

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
)

// HashTextLen is the length of a Hash's text form: 64 lowercase hex digits.
const HashTextLen = 2 * len(Hash{})

// commitHashMagic starts every commit hash input; it versions the layout.
const commitHashMagic = "graft.commit.v1\x00"

// Hash is a commit's 32-byte BLAKE3 identity; see CommitHash.
type Hash [32]byte

// String returns h as 64 lowercase hex digits.
func (h Hash) String() string {
	return hex.EncodeToString(h[:])
}

// IsZero reports whether h is the zero hash, which no commit has in practice.
func (h Hash) IsZero() bool {
	return h == Hash{}
}

// ParseHash parses the text form of a hash: exactly 64 lowercase hex
// digits, so that the text form is canonical. Errors wrap ErrInvalidHash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != HashTextLen {
		return Hash{}, fmt.Errorf("%w: got %d chars, want %d", ErrInvalidHash, len(s), HashTextLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return Hash{}, fmt.Errorf("%w: bad lowercase hex character %q at position %d", ErrInvalidHash, c, i)
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		// Unreachable: every character was checked above.
		return Hash{}, fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}
	return h, nil
}

// HashFromBytes returns the hash held in b, which must be 32 bytes. Errors
// wrap ErrInvalidHash.
func HashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return Hash{}, fmt.Errorf("%w: got %d bytes, want %d", ErrInvalidHash, len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// MarshalText implements encoding.TextMarshaler with String.
func (h Hash) MarshalText() ([]byte, error) {
	return []byte(h.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseHash. On error
// h is left unchanged.
func (h *Hash) UnmarshalText(text []byte) error {
	parsed, err := ParseHash(string(text))
	if err != nil {
		return err
	}
	*h = parsed
	return nil
}

// hasherPool recycles BLAKE3 hashers: each holds an 8 KiB buffer, which
// would otherwise be allocated per commit.
var hasherPool = sync.Pool{New: func() any { return blake3.New() }}

// CommitHash returns a commit's identity: the BLAKE3-256 hash of
//
//	magic      16 bytes  "graft.commit.v1\x00"
//	vid        16 bytes
//	lsn         8 bytes  big-endian
//	page_count  4 bytes  big-endian
//	then for each page, in ascending idx order:
//	idx         4 bytes  big-endian
//	data        the page bytes (PageSize of them in a valid commit)
//
// pages MUST already be sorted ascending with no duplicates, as
// ValidateCommit returns them; CommitHash re-checks neither the order nor
// the page sizes, and hashes whatever bytes it is given. It does not
// allocate.
func CommitHash(vid ID, lsn LSN, pageCount uint32, pages []PageWrite) Hash {
	h := hasherPool.Get().(*blake3.Hasher)
	h.Reset()

	var hdr [len(commitHashMagic) + len(ID{}) + 8 + 4]byte
	copy(hdr[:], commitHashMagic)
	copy(hdr[16:], vid[:])
	binary.BigEndian.PutUint64(hdr[32:], uint64(lsn))
	binary.BigEndian.PutUint32(hdr[40:], pageCount)
	_, _ = h.Write(hdr[:])

	var idx [4]byte
	for _, p := range pages {
		binary.BigEndian.PutUint32(idx[:], uint32(p.Idx))
		_, _ = h.Write(idx[:])
		_, _ = h.Write(p.Data)
	}

	var sum Hash
	h.Sum(sum[:0])
	hasherPool.Put(h)
	return sum
}
