package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/volume"
)

// Checkpoint format constants.
const (
	// CheckpointMagic starts every checkpoint object.
	CheckpointMagic = "GRFTCKP1"
	// CheckpointVersion is the checkpoint format version this package
	// writes and reads.
	CheckpointVersion = 1

	// ckpHeaderSize: magic (8) | version u16 | flags u16 | vid (16) | lsn u64
	// | prev u64 | last_from u64.
	ckpHeaderSize = 8 + 2 + 2 + 16 + 8 + 8 + 8
	// ckpCommitSize: page_count u32 | time i64 | hash (32) | graft_len u32.
	ckpCommitSize = 4 + 8 + 32 + 4
	// CheckpointPageSize is the size of one page entry: idx u32 | lsn u64 |
	// segment ordinal u32 | position u32 | crc u32.
	CheckpointPageSize = 4 + 8 + 4 + 4 + 4
	ckpCRCSize         = 4

	// CheckpointFlagDelta marks a delta: the object describes the snapshot
	// at LSN relative to the full checkpoint at Prev (see Checkpoint.Delta).
	CheckpointFlagDelta = 1
)

// Checkpoint describes a complete snapshot of a volume at LSN: for every
// page with a version at or below LSN, that version's LSN and where its
// bytes are (a segment and the page's position in it, with the index
// entry's CRC so the page is verified without reading the segment's index).
// A reader that starts from the newest checkpoint at or below its snapshot
// needs only the log records after LSN.
//
// Layout (big-endian), stored at CheckpointKey(VID, LSN), written
// create-only and never modified:
//
//	magic "GRFTCKP1" | version u16 (1) | flags u16 (0) | vid (16) | lsn u64
//	| prev u64 (the previous checkpoint's lsn, 0: none) | last_from u64 (the
//	  first lsn of the log record ending at lsn)
//	| commit at lsn: page_count u32 | time_unix_ms i64 | hash (32)
//	  | graft_len u32 | graft (portable roaring, canonical)
//	| segments u32 | n x segment id (16), strictly ascending
//	| pages u32 | n x (idx u32 | lsn u64 | segment ordinal u32 | position u32 | crc u32),
//	  idx strictly ascending
//	| crc32c u32 of everything before it
//
// A valid Checkpoint satisfies: VID valid; 1 <= LastFrom <= LSN; Prev <
// LastFrom; Commit.LSN == LSN and its graft within [1, Commit.PageCount];
// pages strictly ascending by Idx (not bounded by the page count: a page
// beyond it is kept, readers zero it), each LSN in [1, LSN]; segments valid,
// ascending, each referenced by a page, and every page's ordinal in range.
//
// A delta (flags bit 0, Delta true; stored at DeltaKey, never under
// checkpoints/) has the same layout and describes the same snapshot at LSN,
// but lists only the pages whose version at LSN is newer than Prev: the
// full checkpoint at Prev (0: none, the empty volume) holds every other
// page. So each of a delta's page LSNs is in (Prev, LSN], and Prev is below
// LastFrom as for a checkpoint. Flags other than bit 0 are unsupported.
type Checkpoint struct {
	VID volume.ID
	// LSN is the snapshot the checkpoint describes; a log record ends at it.
	LSN volume.LSN
	// Prev is the LSN of the checkpoint this one was built on (0: none).
	Prev volume.LSN
	// LastFrom is the first LSN of the log record ending at LSN.
	LastFrom volume.LSN
	// Commit is the commit at LSN (the snapshot's page count, hash, time
	// and graft), so reads at exactly LSN need no log record.
	Commit RecordCommit
	// Segments are the segments pages live in, ascending.
	Segments []ID
	// Pages are the page versions visible at LSN, ascending by Idx (for a
	// delta: only those written after Prev).
	Pages []CheckpointPage
	// Delta marks a delta checkpoint: Prev is its base, a full checkpoint
	// (0: the empty volume), and Pages are only the pages changed in
	// (Prev, LSN].
	Delta bool
	// Gen is the generation the checkpoint was read from or is written as
	// (CheckpointGenKey); it is part of the key, not of the encoding.
	Gen uint64
}

// CheckpointPage is one page of a checkpoint.
type CheckpointPage struct {
	Idx volume.PageIdx
	LSN volume.LSN
	// Segment is the ordinal of the page's segment in Checkpoint.Segments.
	Segment uint32
	// Pos is the page's position in the segment (PageRange(Pos)).
	Pos uint32
	// CRC is the CRC-32C of the page's bytes (the segment index entry's).
	CRC uint32
}

// Entry returns the segment index entry of the page, for VerifyPage.
func (p CheckpointPage) Entry() Entry { return Entry{Idx: p.Idx, LSN: p.LSN, CRC: p.CRC} }

// Lookup returns the checkpoint's version of page idx (binary search).
func (c *Checkpoint) Lookup(idx volume.PageIdx) (CheckpointPage, bool) {
	i, ok := slices.BinarySearchFunc(c.Pages, idx, func(p CheckpointPage, idx volume.PageIdx) int {
		switch {
		case p.Idx < idx:
			return -1
		case p.Idx > idx:
			return 1
		}
		return 0
	})
	if !ok {
		return CheckpointPage{}, false
	}
	return c.Pages[i], true
}

// problem says what breaks the invariants, or "".
func (c *Checkpoint) problem() string {
	switch {
	case c.LSN == 0 || c.LastFrom == 0 || c.LastFrom > c.LSN:
		return fmt.Sprintf("lsn %d with last record from %d", c.LSN, c.LastFrom)
	case c.Prev >= c.LastFrom:
		return fmt.Sprintf("previous checkpoint %d not below the last record's from %d", c.Prev, c.LastFrom)
	case c.Commit.LSN != c.LSN:
		return fmt.Sprintf("commit lsn %d, want %d", c.Commit.LSN, c.LSN)
	}
	if p := graftProblem(0, &c.Commit); p != "" {
		return "commit: " + p
	}
	for i, s := range c.Segments {
		if !s.Valid() {
			return fmt.Sprintf("segments[%d]: invalid id", i)
		}
		if i > 0 && bytes.Compare(c.Segments[i-1][:], s[:]) >= 0 {
			return fmt.Sprintf("segments[%d]: not ascending", i)
		}
	}
	used := make([]bool, len(c.Segments))
	for i, p := range c.Pages {
		switch {
		case !p.Idx.Valid():
			return fmt.Sprintf("pages[%d]: page index %d", i, p.Idx)
		case i > 0 && c.Pages[i-1].Idx >= p.Idx:
			return fmt.Sprintf("pages[%d] (idx %d): not ascending", i, p.Idx)
		case p.LSN == 0 || p.LSN > c.LSN:
			return fmt.Sprintf("pages[%d] (idx %d): lsn %d outside [1, %d]", i, p.Idx, p.LSN, c.LSN)
		case c.Delta && p.LSN <= c.Prev:
			return fmt.Sprintf("pages[%d] (idx %d): lsn %d of a delta not after its base %d", i, p.Idx, p.LSN, c.Prev)
		case uint64(p.Segment) >= uint64(len(c.Segments)):
			return fmt.Sprintf("pages[%d] (idx %d): segment ordinal %d of %d", i, p.Idx, p.Segment, len(c.Segments))
		}
		used[p.Segment] = true
	}
	if i := slices.Index(used, false); i >= 0 {
		return fmt.Sprintf("segments[%d]: no page references it", i)
	}
	return ""
}

// AppendBinary appends the encoding of c to dst. It refuses (wrapping
// ErrInvalidCheckpoint, or ErrInvalidVolume) a checkpoint DecodeCheckpoint
// would reject; the encoding is canonical.
func (c *Checkpoint) AppendBinary(dst []byte) ([]byte, error) {
	if !c.VID.Valid() {
		return dst, fmt.Errorf("%w: prefix byte 0x%02x, want 0x%02x", ErrInvalidVolume, c.VID[0], volume.IDPrefix)
	}
	if p := c.problem(); p != "" {
		return dst, fmt.Errorf("%w: %s", ErrInvalidCheckpoint, p)
	}
	g, err := c.Commit.Graft.MarshalBinary()
	if err != nil {
		return dst, fmt.Errorf("%w: commit graft: %w", ErrInvalidCheckpoint, err)
	}
	out := slices.Grow(dst, ckpHeaderSize+ckpCommitSize+len(g)+8+16*len(c.Segments)+CheckpointPageSize*len(c.Pages)+ckpCRCSize)
	start := len(out)
	out = append(out, CheckpointMagic...)
	out = binary.BigEndian.AppendUint16(out, CheckpointVersion)
	var flags uint16
	if c.Delta {
		flags = CheckpointFlagDelta
	}
	out = binary.BigEndian.AppendUint16(out, flags)
	out = append(out, c.VID[:]...)
	out = binary.BigEndian.AppendUint64(out, uint64(c.LSN))
	out = binary.BigEndian.AppendUint64(out, uint64(c.Prev))
	out = binary.BigEndian.AppendUint64(out, uint64(c.LastFrom))
	out = binary.BigEndian.AppendUint32(out, c.Commit.PageCount)
	out = binary.BigEndian.AppendUint64(out, uint64(c.Commit.TimeUnixMs))
	out = append(out, c.Commit.Hash[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(g)))
	out = append(out, g...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(c.Segments)))
	for _, s := range c.Segments {
		out = append(out, s[:]...)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(c.Pages)))
	for _, p := range c.Pages {
		out = binary.BigEndian.AppendUint32(out, uint32(p.Idx))
		out = binary.BigEndian.AppendUint64(out, uint64(p.LSN))
		out = binary.BigEndian.AppendUint32(out, p.Segment)
		out = binary.BigEndian.AppendUint32(out, p.Pos)
		out = binary.BigEndian.AppendUint32(out, p.CRC)
	}
	return binary.BigEndian.AppendUint32(out, checksum(out[start:])), nil
}

// DecodeCheckpoint decodes a checkpoint, which must be exactly b; the result
// does not alias b. It checks the length, magic and checksum first
// (ErrCorrupt), then the version and flags (ErrUnsupported), then every
// field and invariant (ErrCorrupt, or ErrInvalidVolume), counts against the
// bytes left before allocating. It never panics and allocates in
// proportion to len(b).
func DecodeCheckpoint(b []byte) (Checkpoint, error) {
	corrupt := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if least := ckpHeaderSize + ckpCommitSize + 8 + ckpCRCSize; len(b) < least {
		return corrupt("truncated: got %d bytes, want at least %d", len(b), least)
	}
	if m := b[:len(CheckpointMagic)]; string(m) != CheckpointMagic {
		return corrupt("magic %q, want %q", m, CheckpointMagic)
	}
	body := b[:len(b)-ckpCRCSize]
	if got, want := checksum(body), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return corrupt("checksum mismatch: stored %08x, computed %08x", want, got)
	}
	if v := binary.BigEndian.Uint16(b[8:]); v != CheckpointVersion {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint version %d, want %d", ErrUnsupported, v, CheckpointVersion)
	}
	fl := binary.BigEndian.Uint16(b[10:])
	if fl&^CheckpointFlagDelta != 0 {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint flags 0x%04x, want 0 or 0x%04x", ErrUnsupported, fl, CheckpointFlagDelta)
	}
	c := Checkpoint{Delta: fl&CheckpointFlagDelta != 0}
	copy(c.VID[:], b[12:28])
	if !c.VID.Valid() {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint volume id has prefix byte 0x%02x, want 0x%02x", ErrInvalidVolume, c.VID[0], volume.IDPrefix)
	}
	c.LSN = volume.LSN(binary.BigEndian.Uint64(b[28:]))
	c.Prev = volume.LSN(binary.BigEndian.Uint64(b[36:]))
	c.LastFrom = volume.LSN(binary.BigEndian.Uint64(b[44:]))
	rest := body[ckpHeaderSize:]
	c.Commit = RecordCommit{LSN: c.LSN, PageCount: binary.BigEndian.Uint32(rest), TimeUnixMs: int64(binary.BigEndian.Uint64(rest[4:]))}
	copy(c.Commit.Hash[:], rest[12:44])
	n := binary.BigEndian.Uint32(rest[44:])
	rest = rest[ckpCommitSize:]
	if uint64(n) > uint64(len(rest)) {
		return corrupt("graft_len %d, only %d bytes left", n, len(rest))
	}
	raw := rest[:n]
	rest = rest[n:]
	g, err := volume.DecodePageSet(raw)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: commit graft: %w", ErrCorrupt, err)
	}
	if canon, err := g.MarshalBinary(); err != nil || !bytes.Equal(canon, raw) {
		return corrupt("commit graft: not in canonical form")
	}
	c.Commit.Graft = g
	if len(rest) < 4 {
		return corrupt("truncated before the segment count")
	}
	ns := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(ns) > uint64(len(rest)/16) {
		return corrupt("%d segments need %d bytes, %d left", ns, uint64(ns)*16, len(rest))
	}
	c.Segments = make([]ID, ns)
	for i := range c.Segments {
		copy(c.Segments[i][:], rest[:16])
		rest = rest[16:]
	}
	if len(rest) < 4 {
		return corrupt("truncated before the page count")
	}
	np := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(len(rest)) != uint64(np)*CheckpointPageSize {
		return corrupt("%d pages need %d bytes, %d left", np, uint64(np)*CheckpointPageSize, len(rest))
	}
	c.Pages = make([]CheckpointPage, np)
	for i := range c.Pages {
		p := rest[i*CheckpointPageSize:]
		c.Pages[i] = CheckpointPage{
			Idx:     volume.PageIdx(binary.BigEndian.Uint32(p)),
			LSN:     volume.LSN(binary.BigEndian.Uint64(p[4:])),
			Segment: binary.BigEndian.Uint32(p[12:]),
			Pos:     binary.BigEndian.Uint32(p[16:]),
			CRC:     binary.BigEndian.Uint32(p[20:]),
		}
	}
	if p := c.problem(); p != "" {
		return corrupt("%s", p)
	}
	return c, nil
}
