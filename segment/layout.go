package segment

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/graft-cluster/graft/volume"
)

// VolumesPrefix starts every object key of the layout: each volume's objects
// live under VolumesPrefix + vid.String() + "/". Keys are relative to the
// object store's own prefix.
const VolumesPrefix = "volumes/"

// logLSNDigits is the width of the zero-padded decimal LSN of a log key:
// 2^64-1 has 20 digits, so every LSN fits and keys sort by LSN.
const logLSNDigits = 20

// SegmentKey returns the key of segment sid of volume vid:
// "volumes/{vid}/segments/{sid}", with both IDs in their base58 text form.
func SegmentKey(vid volume.ID, sid ID) string {
	return VolumesPrefix + vid.String() + "/segments/" + sid.String()
}

// SegmentPrefix returns the prefix of every segment key of volume vid:
// "volumes/{vid}/segments/".
func SegmentPrefix(vid volume.ID) string {
	return VolumesPrefix + vid.String() + "/segments/"
}

// LogPrefix returns the prefix of every log record key of volume vid:
// "volumes/{vid}/log/". Listing it yields the volume's log in LSN order.
func LogPrefix(vid volume.ID) string {
	return VolumesPrefix + vid.String() + "/log/"
}

// LogKey returns the key of the log record of volume vid whose LSN range
// starts at from: LogPrefix(vid) followed by from as a 20-digit zero-padded
// decimal, so that a bytewise sort of the keys is a sort by LSN. For an
// invalid vid or from 0 it returns a key that ParseLogKey rejects.
func LogKey(vid volume.ID, from volume.LSN) string {
	return fmt.Sprintf("%s%0*d", LogPrefix(vid), logLSNDigits, uint64(from))
}

// ParseVolumeKey returns the volume of any key under "volumes/{vid}/": a
// segment key, a log key, or a prefix such as LogPrefix(vid). Errors wrap
// ErrInvalidKey, and volume.ErrInvalidID when the volume ID does not parse;
// as volume.ParseID accepts only canonical text, so does ParseVolumeKey.
func ParseVolumeKey(key string) (volume.ID, error) {
	vid, _, err := splitVolumeKey(key)
	return vid, err
}

// ParseLogKey parses a key that LogKey returns for a valid volume ID and an
// LSN of at least 1, and only such a key: "volumes/{vid}/log/" followed by
// exactly 20 decimal digits, nothing else. Errors wrap ErrInvalidKey (and
// volume.ErrInvalidID for a bad volume ID) and say what is wrong:
//
//	segment: invalid object key "volumes/{vid}/log/17": lsn "17" is 2 characters, want 20 digits
//	segment: invalid object key "volumes/{vid}/log/00000000000000000000": lsn 0 is invalid
func ParseLogKey(key string) (volume.ID, volume.LSN, error) {
	vid, rest, err := splitVolumeKey(key)
	if err != nil {
		return volume.ID{}, 0, err
	}
	digits, ok := strings.CutPrefix(rest, "log/")
	if !ok {
		return volume.ID{}, 0, fmt.Errorf("%w %q: not a log key: want \"log/\" after the volume id", ErrInvalidKey, key)
	}
	if len(digits) != logLSNDigits {
		return volume.ID{}, 0, fmt.Errorf("%w %q: lsn %q is %d characters, want %d digits", ErrInvalidKey, key, digits, len(digits), logLSNDigits)
	}
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; c < '0' || c > '9' {
			return volume.ID{}, 0, fmt.Errorf("%w %q: lsn %q has non-digit %q at position %d", ErrInvalidKey, key, digits, c, i)
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		// Only 20 digits above 2^64-1 get here.
		return volume.ID{}, 0, fmt.Errorf("%w %q: lsn %s is above 2^64-1", ErrInvalidKey, key, digits)
	}
	if n == 0 {
		return volume.ID{}, 0, fmt.Errorf("%w %q: lsn 0 is invalid", ErrInvalidKey, key)
	}
	return vid, volume.LSN(n), nil
}

// splitVolumeKey parses the "volumes/{vid}/" head of key and returns the
// volume and the rest of the key after that slash.
func splitVolumeKey(key string) (volume.ID, string, error) {
	rest, ok := strings.CutPrefix(key, VolumesPrefix)
	if !ok {
		return volume.ID{}, "", fmt.Errorf("%w %q: want prefix %q", ErrInvalidKey, key, VolumesPrefix)
	}
	text, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return volume.ID{}, "", fmt.Errorf("%w %q: no \"/\" after the volume id", ErrInvalidKey, key)
	}
	vid, err := volume.ParseID(text)
	if err != nil {
		return volume.ID{}, "", fmt.Errorf("%w %q: %w", ErrInvalidKey, key, err)
	}
	return vid, rest, nil
}

// CheckpointPrefix returns the prefix of every checkpoint key of volume vid:
// "volumes/{vid}/checkpoints/".
func CheckpointPrefix(vid volume.ID) string {
	return VolumesPrefix + vid.String() + "/checkpoints/"
}

// CheckpointKey returns the key of the checkpoint of volume vid at lsn:
// CheckpointPrefix(vid) followed by 2^64-1-lsn as 20 zero-padded digits.
// The LSN is inverted so that a bytewise sort, the order in which S3 LIST
// returns keys, puts the newest checkpoint first: a LIST of the prefix
// starting at CheckpointKey(vid, L) (inclusive) returns the newest
// checkpoint at or below L as its first key, in one request however many
// checkpoints exist.
func CheckpointKey(vid volume.ID, lsn volume.LSN) string {
	return fmt.Sprintf("%s%0*d", CheckpointPrefix(vid), logLSNDigits, ^uint64(lsn))
}

// CheckpointGenKey returns the key of generation gen of the checkpoint of
// volume vid at lsn. Generation 0 is the checkpoint as first written,
// CheckpointKey(vid, lsn). Compaction rewrites a retained checkpoint to
// point its page versions at compacted copies (the same versions, other
// locations) as generation gen+1, create-only: CheckpointKey(vid, lsn)
// followed by "." and 2^64-1-gen as 20 zero-padded digits. A LIST returns
// the keys of one LSN together, generation 0 first and then the others
// newest first, and every key of the LSN sorts before the keys of lsn-1
// and after CheckpointListStart(vid, lsn) (they all start with
// CheckpointKey(vid, lsn)).
func CheckpointGenKey(vid volume.ID, lsn volume.LSN, gen uint64) string {
	if gen == 0 {
		return CheckpointKey(vid, lsn)
	}
	return fmt.Sprintf("%s.%0*d", CheckpointKey(vid, lsn), logLSNDigits, ^gen)
}

// CheckpointListStart returns the key to list checkpoints after to get
// those at or below lsn first, newest first: every generation key of
// lsn+1 and above sorts at or before it ('/' sorts after '.'), every key
// of lsn and below after it.
func CheckpointListStart(vid volume.ID, lsn volume.LSN) string {
	return CheckpointKey(vid, lsn+1) + "/"
}

// ParseCheckpointKey parses a key that CheckpointGenKey returns for a
// valid volume ID, an LSN of at least 1 and any generation, and only such
// a key, and returns its volume and LSN. Errors wrap ErrInvalidKey.
func ParseCheckpointKey(key string) (volume.ID, volume.LSN, error) {
	vid, lsn, _, err := ParseCheckpointGenKey(key)
	return vid, lsn, err
}

// ParseCheckpointGenKey is ParseCheckpointKey that also returns the
// generation.
func ParseCheckpointGenKey(key string) (volume.ID, volume.LSN, uint64, error) {
	base, gen := key, uint64(0)
	if i := strings.LastIndexByte(key, '.'); i > strings.LastIndexByte(key, '/') {
		digits := key[i+1:]
		if len(digits) != logLSNDigits || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return volume.ID{}, 0, 0, fmt.Errorf("%w %q: want %d digits of generation after the last '.'", ErrInvalidKey, key, logLSNDigits)
		}
		n, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			return volume.ID{}, 0, 0, fmt.Errorf("%w %q: generation above 2^64-1", ErrInvalidKey, key)
		}
		if gen = ^n; gen == 0 {
			return volume.ID{}, 0, 0, fmt.Errorf("%w %q: generation 0 has no suffix", ErrInvalidKey, key)
		}
		base = key[:i]
	}
	vid, lsn, err := parseInvertedKey(base, "checkpoints/")
	if err != nil {
		return volume.ID{}, 0, 0, err
	}
	return vid, lsn, gen, nil
}

// DeletedKey returns the key of the marker GC writes for a deleted volume
// until every other object of it is gone: "volumes/{vid}/deleted".
// Recovery skips a volume that has it, so a new cluster on the bucket does
// not bring a deleted volume back.
func DeletedKey(vid volume.ID) string {
	return VolumesPrefix + vid.String() + "/deleted"
}

// DeltaPrefix returns the prefix of every delta key of volume vid:
// "volumes/{vid}/deltas/".
func DeltaPrefix(vid volume.ID) string {
	return VolumesPrefix + vid.String() + "/deltas/"
}

// DeltaKey returns the key of the delta of volume vid at lsn: DeltaPrefix(vid)
// followed by 2^64-1-lsn as 20 zero-padded digits, newest first in a LIST,
// exactly as CheckpointKey.
func DeltaKey(vid volume.ID, lsn volume.LSN) string {
	return fmt.Sprintf("%s%0*d", DeltaPrefix(vid), logLSNDigits, ^uint64(lsn))
}

// ParseDeltaKey parses a key that DeltaKey returns for a valid volume ID and
// an LSN of at least 1, and only such a key. Errors wrap ErrInvalidKey.
func ParseDeltaKey(key string) (volume.ID, volume.LSN, error) {
	return parseInvertedKey(key, "deltas/")
}

// parseInvertedKey parses "volumes/{vid}/{dir}{2^64-1-lsn, 20 digits}".
func parseInvertedKey(key, dir string) (volume.ID, volume.LSN, error) {
	vid, rest, err := splitVolumeKey(key)
	if err != nil {
		return volume.ID{}, 0, err
	}
	digits, ok := strings.CutPrefix(rest, dir)
	if !ok {
		return volume.ID{}, 0, fmt.Errorf("%w %q: want %q after the volume id", ErrInvalidKey, key, dir)
	}
	if len(digits) != logLSNDigits || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return volume.ID{}, 0, fmt.Errorf("%w %q: want %d digits after %q", ErrInvalidKey, key, logLSNDigits, dir)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return volume.ID{}, 0, fmt.Errorf("%w %q: above 2^64-1", ErrInvalidKey, key)
	}
	lsn := volume.LSN(^n)
	if lsn == 0 {
		return volume.ID{}, 0, fmt.Errorf("%w %q: lsn 0 is invalid", ErrInvalidKey, key)
	}
	return vid, lsn, nil
}
