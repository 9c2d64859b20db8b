package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/graft-cluster/graft/volume"
)

// Log record format constants. See the package documentation for the layout.
const (
	// RecordMagic starts every log record.
	RecordMagic = "GRFTLOG1"

	// RecordVersion is the log record format version this package writes
	// and reads.
	RecordVersion = 1
)

// Log record field offsets and sizes.
const (
	recOffMagic   = 0  // [8]byte
	recOffVersion = 8  // u16
	recOffFlags   = 10 // u16
	recOffVID     = 12 // [16]byte
	recOffFrom    = 28 // u64
	recOffTo      = 36 // u64
	recOffSegment = 44 // [16]byte
	recOffCount   = 60 // u32

	// recHeaderSize is the size of the fields before the first commit.
	recHeaderSize = 64
	// recCommitSize is the size of a commit's fixed fields: lsn u64,
	// page_count u32, time_unix_ms i64, hash [32], graft_len u32. Every
	// commit takes at least this many bytes.
	recCommitSize = 56
	// recCRCSize is the size of the trailing checksum.
	recCRCSize = 4
)

// Record is a log record: one flush of one volume. It covers the contiguous
// LSN range [From, To], describes every commit in it, and names the segment
// holding the pages those commits wrote. A volume's log records, in LSN
// order, map every flushed LSN to its commit and the segment of its pages;
// they are stored at LogKey(VID, From).
//
// A valid Record, which Record.AppendBinary encodes and DecodeRecord
// returns, satisfies:
//
//   - VID is a valid volume ID.
//   - 1 <= From <= To, and the range holds at most 2^32-1 commits.
//   - Commits holds exactly To-From+1 commits, and Commits[i].LSN is
//     From+i.
//   - Every page of a commit's Graft is in [1, PageCount].
//   - Segment is the zero ID exactly when every Graft is empty: a flush
//     whose commits wrote no page uploads no segment. Otherwise it is a
//     valid segment ID.
type Record struct {
	// VID is the volume flushed.
	VID volume.ID
	// From and To bound the flushed LSN range, inclusive: 1 <= From <= To.
	From, To volume.LSN
	// Segment names the segment object, SegmentKey(VID, Segment), holding
	// the page versions the commits wrote, or is the zero ID when no commit
	// of the range wrote a page (then no segment object exists).
	Segment ID
	// Commits are the commits of the range in LSN order: exactly To-From+1,
	// with Commits[i].LSN == From+i.
	Commits []RecordCommit
}

// RecordCommit is one commit of a log record.
type RecordCommit struct {
	// LSN is the commit's log sequence number.
	LSN volume.LSN
	// PageCount is the volume's page count after the commit.
	PageCount uint32
	// TimeUnixMs is the commit time in unix milliseconds, as the commit
	// recorded it; any value is valid.
	TimeUnixMs int64
	// Hash is the commit hash (volume.CommitHash).
	Hash volume.Hash
	// Graft is the set of pages the commit wrote; each is at most PageCount.
	// It may be empty: a commit can change only the page count.
	Graft volume.PageSet
}

// Graft returns the union of the commits' grafts: every page the record's
// range wrote. The set does not share memory with r.
func (r *Record) Graft() volume.PageSet {
	var g volume.PageSet
	for _, c := range r.Commits {
		g.Union(c.Graft)
	}
	return g
}

// Commit returns the commit of r at lsn, and false if lsn is outside
// [From, To] or r does not hold it where a valid record would. The returned
// commit's Graft shares memory with r's.
func (r *Record) Commit(lsn volume.LSN) (RecordCommit, bool) {
	if lsn < r.From || lsn > r.To {
		return RecordCommit{}, false
	}
	i := uint64(lsn - r.From)
	if i >= uint64(len(r.Commits)) || r.Commits[i].LSN != lsn {
		return RecordCommit{}, false
	}
	return r.Commits[i], true
}

// AppendBinary appends the encoding of r to dst and returns the extended
// slice; it implements encoding.BinaryAppender. The encoding is canonical:
// DecodeRecord returns an equal Record, and encoding that again yields the
// same bytes.
//
// It first checks every invariant DecodeRecord checks (see Record), so it
// never writes a record that DecodeRecord rejects. An invalid VID wraps
// ErrInvalidVolume; every other error wraps ErrInvalidRecord with the
// message DecodeRecord would give after "segment: corrupt log record":
//
//	segment: invalid log record: commits[3]: lsn 18, want 17
//	segment: invalid log record: commits[0] (lsn 5): graft: page 9 beyond page_count 8
//
// On error it returns dst unchanged.
func (r *Record) AppendBinary(dst []byte) ([]byte, error) {
	if !r.VID.Valid() {
		return dst, fmt.Errorf("%w: prefix byte 0x%02x, want 0x%02x", ErrInvalidVolume, r.VID[0], volume.IDPrefix)
	}
	if p := headerProblem(r.From, r.To, r.Segment, uint64(len(r.Commits))); p != "" {
		return dst, fmt.Errorf("%w: %s", ErrInvalidRecord, p)
	}
	grafts := make([][]byte, len(r.Commits))
	size := recHeaderSize + recCRCSize
	for i := range r.Commits {
		c := &r.Commits[i]
		if p := lsnProblem(i, r.From, c.LSN); p != "" {
			return dst, fmt.Errorf("%w: %s", ErrInvalidRecord, p)
		}
		if p := graftProblem(i, c); p != "" {
			return dst, fmt.Errorf("%w: %s", ErrInvalidRecord, p)
		}
		g, err := c.Graft.MarshalBinary()
		if err != nil {
			return dst, fmt.Errorf("%w: commits[%d] (lsn %d): graft: %w", ErrInvalidRecord, i, c.LSN, err)
		}
		// A portable Roaring bitmap of 32-bit values is at most about
		// 512 MiB, so its length always fits graft_len's u32.
		grafts[i] = g
		size += recCommitSize + len(g)
	}
	if p := segmentProblem(r); p != "" {
		return dst, fmt.Errorf("%w: %s", ErrInvalidRecord, p)
	}

	out := slices.Grow(dst, size)
	start := len(out)
	out = append(out, RecordMagic...)
	out = binary.BigEndian.AppendUint16(out, RecordVersion)
	out = binary.BigEndian.AppendUint16(out, 0) // flags
	out = append(out, r.VID[:]...)
	out = binary.BigEndian.AppendUint64(out, uint64(r.From))
	out = binary.BigEndian.AppendUint64(out, uint64(r.To))
	out = append(out, r.Segment[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(r.Commits)))
	for i, c := range r.Commits {
		out = binary.BigEndian.AppendUint64(out, uint64(c.LSN))
		out = binary.BigEndian.AppendUint32(out, c.PageCount)
		out = binary.BigEndian.AppendUint64(out, uint64(c.TimeUnixMs))
		out = append(out, c.Hash[:]...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(grafts[i])))
		out = append(out, grafts[i]...)
	}
	return binary.BigEndian.AppendUint32(out, checksum(out[start:])), nil
}

// DecodeRecord decodes a log record, which must be exactly b. The Record
// does not alias b.
//
// It checks, in this order, and wraps ErrCorrupt unless noted: the length
// (at least the header and checksum), the magic, the checksum over all
// bytes before it, the version and flags (ErrUnsupported: a valid checksum
// means a newer writer, not damage), the volume ID (ErrInvalidVolume), the
// LSN range, the segment ID, the commit count against the range and against
// the bytes left (each commit takes at least 56, checked before allocating),
// then each commit: its LSN, its graft_len against the bytes left, its graft
// (volume.DecodePageSet's error is wrapped too; the bytes must also be
// exactly what PageSet.MarshalBinary writes, so the encoding stays
// canonical) and the graft's pages against page_count; then that no bytes
// trail the last commit, and finally that the segment ID is zero exactly
// when every graft is empty. Errors name what is wrong:
//
//	segment: corrupt log record: checksum mismatch: stored 8a3f0c21, computed 0d9e44b0
//	segment: corrupt log record: 3 commits for lsns [10, 13], want 4
//	segment: corrupt log record: commits[3] (lsn 17): graft: volume: invalid page set: ...
//
// DecodeRecord never panics and allocates in proportion to len(b).
func DecodeRecord(b []byte) (Record, error) {
	corrupt := func(problem string) (Record, error) {
		return Record{}, fmt.Errorf("%w log record: %s", ErrCorrupt, problem)
	}
	if least := recHeaderSize + recCRCSize; len(b) < least {
		return corrupt(fmt.Sprintf("truncated: got %d bytes, want at least %d", len(b), least))
	}
	if m := b[recOffMagic : recOffMagic+len(RecordMagic)]; string(m) != RecordMagic {
		return corrupt(fmt.Sprintf("magic %q, want %q", m, RecordMagic))
	}
	body := b[:len(b)-recCRCSize]
	if got, want := checksum(body), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return corrupt(fmt.Sprintf("checksum mismatch: stored %08x, computed %08x", want, got))
	}
	if v := binary.BigEndian.Uint16(b[recOffVersion:]); v != RecordVersion {
		return Record{}, fmt.Errorf("%w: log record version %d, want %d", ErrUnsupported, v, RecordVersion)
	}
	if fl := binary.BigEndian.Uint16(b[recOffFlags:]); fl != 0 {
		return Record{}, fmt.Errorf("%w: log record flags 0x%04x, want 0", ErrUnsupported, fl)
	}

	var r Record
	copy(r.VID[:], b[recOffVID:])
	if !r.VID.Valid() {
		return Record{}, fmt.Errorf("%w: log record volume id has prefix byte 0x%02x, want 0x%02x", ErrInvalidVolume, r.VID[0], volume.IDPrefix)
	}
	r.From = volume.LSN(binary.BigEndian.Uint64(b[recOffFrom:]))
	r.To = volume.LSN(binary.BigEndian.Uint64(b[recOffTo:]))
	copy(r.Segment[:], b[recOffSegment:])
	count := binary.BigEndian.Uint32(b[recOffCount:])
	if p := headerProblem(r.From, r.To, r.Segment, uint64(count)); p != "" {
		return corrupt(p)
	}
	rest := body[recHeaderSize:]
	if uint64(count) > uint64(len(rest)/recCommitSize) {
		return corrupt(fmt.Sprintf("%d commits need at least %d bytes, %d left", count, uint64(count)*recCommitSize, len(rest)))
	}

	r.Commits = make([]RecordCommit, count)
	for i := range r.Commits {
		if len(rest) < recCommitSize {
			return corrupt(fmt.Sprintf("commits[%d]: truncated: %d bytes left, want at least %d", i, len(rest), recCommitSize))
		}
		c := RecordCommit{
			LSN:        volume.LSN(binary.BigEndian.Uint64(rest[0:])),
			PageCount:  binary.BigEndian.Uint32(rest[8:]),
			TimeUnixMs: int64(binary.BigEndian.Uint64(rest[12:])),
		}
		copy(c.Hash[:], rest[20:52])
		n := binary.BigEndian.Uint32(rest[52:])
		rest = rest[recCommitSize:]
		if p := lsnProblem(i, r.From, c.LSN); p != "" {
			return corrupt(p)
		}
		if uint64(n) > uint64(len(rest)) {
			return corrupt(fmt.Sprintf("commits[%d] (lsn %d): graft_len %d, only %d bytes left", i, c.LSN, n, len(rest)))
		}
		raw := rest[:n]
		rest = rest[n:]
		g, err := volume.DecodePageSet(raw)
		if err != nil {
			return Record{}, fmt.Errorf("%w log record: commits[%d] (lsn %d): graft: %w", ErrCorrupt, i, c.LSN, err)
		}
		if canon, err := g.MarshalBinary(); err != nil || !bytes.Equal(canon, raw) {
			return corrupt(fmt.Sprintf("commits[%d] (lsn %d): graft: not in canonical form", i, c.LSN))
		}
		c.Graft = g
		if p := graftProblem(i, &c); p != "" {
			return corrupt(p)
		}
		r.Commits[i] = c
	}
	if len(rest) != 0 {
		return corrupt(fmt.Sprintf("%d trailing bytes after the last commit", len(rest)))
	}
	if p := segmentProblem(&r); p != "" {
		return corrupt(p)
	}
	return r, nil
}

// headerProblem says what is wrong with a record's LSN range, segment ID and
// number of commits, or returns "".
func headerProblem(from, to volume.LSN, sid ID, count uint64) string {
	switch {
	case from == 0:
		return "from lsn 0"
	case to < from:
		return fmt.Sprintf("to lsn %d < from lsn %d", to, from)
	case uint64(to-from) >= math.MaxUint32:
		return fmt.Sprintf("lsns [%d, %d] are %d commits, more than %d", from, to, uint64(to-from)+1, uint32(math.MaxUint32))
	case count != uint64(to-from)+1:
		return fmt.Sprintf("%d commits for lsns [%d, %d], want %d", count, from, to, uint64(to-from)+1)
	case !sid.IsZero() && !sid.Valid():
		return fmt.Sprintf("segment id has prefix byte 0x%02x, want 0x%02x (or all zero for no segment)", sid[0], IDPrefix)
	}
	return ""
}

// lsnProblem says what is wrong with the LSN of the i-th commit of a record
// starting at from, or returns "".
func lsnProblem(i int, from, lsn volume.LSN) string {
	if want := from + volume.LSN(i); lsn != want {
		return fmt.Sprintf("commits[%d]: lsn %d, want %d", i, lsn, want)
	}
	return ""
}

// graftProblem says what is wrong with the graft of c, the i-th commit, or
// returns "".
func graftProblem(i int, c *RecordCommit) string {
	if c.Graft.IsEmpty() {
		return ""
	}
	if c.Graft.Contains(0) {
		// PageSet never holds 0; a caller writing to its Bitmap can break it.
		return fmt.Sprintf("commits[%d] (lsn %d): graft: page index 0 is invalid", i, c.LSN)
	}
	if top := c.Graft.Bitmap().Maximum(); top > c.PageCount {
		return fmt.Sprintf("commits[%d] (lsn %d): graft: page %d beyond page_count %d", i, c.LSN, top, c.PageCount)
	}
	return ""
}

// segmentProblem says what is inconsistent between r's segment ID and its
// grafts, or returns "".
func segmentProblem(r *Record) string {
	for i, c := range r.Commits {
		if !c.Graft.IsEmpty() {
			if r.Segment.IsZero() {
				return fmt.Sprintf("commits[%d] (lsn %d) wrote %d pages, but the record names no segment", i, c.LSN, c.Graft.Len())
			}
			return ""
		}
	}
	if !r.Segment.IsZero() {
		return fmt.Sprintf("segment %s named, but no commit wrote a page", r.Segment)
	}
	return ""
}
