package segment

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/graft-cluster/graft/volume"
)

// maxCount is the most page versions one segment can hold (Count is a u32).
// It is a variable so that tests can lower it.
var maxCount int = min(math.MaxUint32, math.MaxInt)

// pageKey identifies a page version within a Builder.
type pageKey struct {
	idx volume.PageIdx
	lsn volume.LSN
}

// builderEntry is an index entry plus its page: shared (added by
// AddCommitShared) or at off in the arena.
type builderEntry struct {
	Entry
	off    int
	shared []byte
}

// Builder accumulates the page versions of one volume and encodes them as a
// segment. Pages may be added in any order; Encode and WriteTo sort them.
// A Builder is not safe for concurrent use. The zero Builder has the zero
// (invalid) volume ID; use NewBuilder or Reset.
type Builder struct {
	vid     volume.ID
	entries []builderEntry
	arena   []byte // page bytes, in Add order
	seen    map[pageKey]struct{}
	sorted  bool
}

// NewBuilder returns an empty Builder for the volume vid. An invalid vid is
// reported by Encode and WriteTo.
func NewBuilder(vid volume.ID) *Builder {
	return &Builder{vid: vid, seen: make(map[pageKey]struct{}), sorted: true}
}

// Reset empties b and sets its volume to vid, keeping its allocated memory
// for reuse.
func (b *Builder) Reset(vid volume.ID) {
	b.vid = vid
	clear(b.entries) // drop shared pages
	b.entries = b.entries[:0]
	b.arena = b.arena[:0]
	clear(b.seen)
	b.sorted = true
}

// Add adds the version of page idx written at lsn. page is copied; the
// caller may reuse it.
//
// Errors wrap ErrInvalidPage and name the version: page data that is not
// exactly PageSize bytes (wrapping volume.ErrInvalidPage too), idx 0, lsn 0,
// a version (idx, lsn) already added, or a full builder. On error b is
// unchanged.
//
//	segment: invalid page: idx 3, lsn 5: volume: invalid page: page is 100 bytes, want 4096
//	segment: invalid page: idx 0, lsn 5: page index 0 is invalid
//	segment: invalid page: idx 3, lsn 0: lsn 0 is invalid
//	segment: invalid page: idx 3, lsn 5: duplicate page version
func (b *Builder) Add(idx volume.PageIdx, lsn volume.LSN, page []byte) error {
	if err := b.check(idx, lsn, page); err != nil {
		return err
	}
	b.add(idx, lsn, page, false)
	return nil
}

// AddCommit adds every page a commit at lsn wrote, as Add would, but all or
// nothing: if any page is rejected, none is added. The error names the page
// by its position in pages.
func (b *Builder) AddCommit(lsn volume.LSN, pages []volume.PageWrite) error {
	return b.addCommit(lsn, pages, false)
}

// AddCommitShared is AddCommit without copying the pages: b keeps
// references to them, so they must not change until b is encoded (or
// Reset). For pages that are immutable anyway, such as the FSM's buffered
// commits the flusher writes out: it saves a copy of every page.
func (b *Builder) AddCommitShared(lsn volume.LSN, pages []volume.PageWrite) error {
	return b.addCommit(lsn, pages, true)
}

func (b *Builder) addCommit(lsn volume.LSN, pages []volume.PageWrite, share bool) error {
	if len(pages) > maxCount-len(b.entries) {
		return fmt.Errorf("%w: lsn %d: %d pages do not fit; the builder holds %d of at most %d", ErrInvalidPage, lsn, len(pages), len(b.entries), maxCount)
	}
	batch := make(map[volume.PageIdx]int, len(pages))
	for i, p := range pages {
		if err := b.check(p.Idx, lsn, p.Data); err != nil {
			return fmt.Errorf("pages[%d]: %w", i, err)
		}
		if j, dup := batch[p.Idx]; dup {
			return fmt.Errorf("pages[%d]: %w: idx %d, lsn %d: duplicate of pages[%d]", i, ErrInvalidPage, p.Idx, lsn, j)
		}
		batch[p.Idx] = i
	}
	for _, p := range pages {
		b.add(p.Idx, lsn, p.Data, share)
	}
	return nil
}

// check validates one page version against b without adding it.
func (b *Builder) check(idx volume.PageIdx, lsn volume.LSN, page []byte) error {
	if err := volume.ValidatePage(page); err != nil {
		return fmt.Errorf("%w: idx %d, lsn %d: %w", ErrInvalidPage, idx, lsn, err)
	}
	if !idx.Valid() {
		return fmt.Errorf("%w: idx %d, lsn %d: page index 0 is invalid", ErrInvalidPage, idx, lsn)
	}
	if lsn == 0 {
		return fmt.Errorf("%w: idx %d, lsn %d: lsn 0 is invalid", ErrInvalidPage, idx, lsn)
	}
	if _, dup := b.seen[pageKey{idx, lsn}]; dup {
		return fmt.Errorf("%w: idx %d, lsn %d: duplicate page version", ErrInvalidPage, idx, lsn)
	}
	if len(b.entries) >= maxCount {
		return fmt.Errorf("%w: idx %d, lsn %d: the builder holds the maximum %d page versions", ErrInvalidPage, idx, lsn, maxCount)
	}
	return nil
}

// add adds a version that check accepted, copied into the arena or shared.
func (b *Builder) add(idx volume.PageIdx, lsn volume.LSN, page []byte, share bool) {
	e := builderEntry{Entry: Entry{Idx: idx, LSN: lsn, CRC: checksum(page)}, off: len(b.arena)}
	if n := len(b.entries); n > 0 && b.entries[n-1].compare(e.Entry) > 0 {
		b.sorted = false
	}
	if share {
		e.shared = page[:PageSize:PageSize]
	} else {
		b.arena = append(b.arena, page...)
	}
	b.entries = append(b.entries, e)
	if b.seen == nil {
		b.seen = make(map[pageKey]struct{})
	}
	b.seen[pageKey{idx, lsn}] = struct{}{}
}

// page returns e's page bytes.
func (b *Builder) page(e *builderEntry) []byte {
	if e.shared != nil {
		return e.shared
	}
	return b.arena[e.off : e.off+PageSize]
}

// Len returns the number of page versions added.
func (b *Builder) Len() int { return len(b.entries) }

// Size returns the size in bytes of the segment Encode would return (for an
// empty builder, which Encode rejects, the size of a bare footer).
func (b *Builder) Size() int64 {
	return int64(len(b.entries))*(PageSize+EntrySize) + FooterSize
}

// layout sorts the entries into index order and returns the footer, minus
// the index checksum.
func (b *Builder) layout() (Footer, error) {
	if !b.vid.Valid() {
		return Footer{}, fmt.Errorf("%w: prefix byte 0x%02x, want 0x%02x", ErrInvalidVolume, b.vid[0], volume.IDPrefix)
	}
	if len(b.entries) == 0 {
		return Footer{}, fmt.Errorf("%w: no pages", ErrEmpty)
	}
	if !b.sorted {
		slices.SortFunc(b.entries, func(x, y builderEntry) int { return x.compare(y.Entry) })
		b.sorted = true
	}
	f := Footer{VID: b.vid, Count: uint32(len(b.entries)), MinLSN: b.entries[0].LSN, MaxLSN: b.entries[0].LSN}
	for _, e := range b.entries {
		f.MinLSN = min(f.MinLSN, e.LSN)
		f.MaxLSN = max(f.MaxLSN, e.LSN)
	}
	return f, nil
}

// appendTail appends the index and the footer to dst.
func (b *Builder) appendTail(dst []byte, f Footer) []byte {
	start := len(dst)
	for _, e := range b.entries {
		dst = appendEntry(dst, e.Entry)
	}
	f.IndexCRC = checksum(dst[start:])
	return appendFooter(dst, f)
}

// Encode returns the whole segment. It fails, wrapping ErrEmpty, if no page
// was added, or wrapping ErrInvalidVolume if the volume ID is invalid. The
// Builder is unchanged and may be encoded again or added to.
func (b *Builder) Encode() ([]byte, error) {
	return b.AppendBinary(make([]byte, 0, b.Size()))
}

// AppendBinary appends the segment Encode would return to dst, so that a
// caller can reuse one buffer across segments; it implements
// encoding.BinaryAppender. On error it returns dst unchanged.
func (b *Builder) AppendBinary(dst []byte) ([]byte, error) {
	f, err := b.layout()
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, int(b.Size()))
	for i := range b.entries {
		dst = append(dst, b.page(&b.entries[i])...)
	}
	return b.appendTail(dst, f), nil
}

// WriteTo writes the segment Encode would return to w, page by page, without
// building it in memory; it implements io.WriterTo. It returns the bytes
// written and the first error, either Encode's or w's.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	f, err := b.layout()
	if err != nil {
		return 0, err
	}
	var n int64
	for i := range b.entries {
		m, err := w.Write(b.page(&b.entries[i]))
		n += int64(m)
		if err != nil {
			return n, fmt.Errorf("write segment page: %w", err)
		}
	}
	m, err := w.Write(b.appendTail(make([]byte, 0, len(b.entries)*EntrySize+FooterSize), f))
	n += int64(m)
	if err != nil {
		return n, fmt.Errorf("write segment index: %w", err)
	}
	return n, nil
}
