package segment

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"iter"
	"slices"
	"sort"

	"github.com/graft-cluster/graft/volume"
)

// Entry is one index entry: a page version and the checksum of its bytes.
// The i-th entry of an index describes the i-th page of the segment.
type Entry struct {
	Idx volume.PageIdx
	LSN volume.LSN
	CRC uint32 // CRC-32C of the page's PageSize bytes
}

// compare orders entries by (Idx, LSN), the index order.
func (e Entry) compare(o Entry) int {
	if c := cmp.Compare(e.Idx, o.Idx); c != 0 {
		return c
	}
	return cmp.Compare(e.LSN, o.LSN)
}

// Index is a decoded segment index: entries sorted by (Idx, LSN) ascending,
// without duplicates. The zero Index is empty. An Index is immutable and safe
// for concurrent use.
type Index struct {
	entries []Entry
}

// DecodeIndex decodes the index region b of the segment f describes (the
// bytes at IndexRange(f)).
//
// It checks, wrapping ErrCorrupt: the footer's own consistency, that b is
// exactly Count*EntrySize bytes (so the decoded index is never larger than
// its input), the index checksum, and then each entry in order: page index
// not 0, LSN within [MinLSN, MaxLSN], strictly after the previous entry in
// (Idx, LSN) order. Finally both MinLSN and MaxLSN must occur. Errors name
// the entry: "segment: corrupt: index entry 3: page index 0".
func DecodeIndex(f Footer, b []byte) (Index, error) {
	if err := f.check(); err != nil {
		return Index{}, err
	}
	if _, want := IndexRange(f); int64(len(b)) != want {
		return Index{}, fmt.Errorf("%w: index is %d bytes, want %d for %d entries", ErrCorrupt, len(b), want, f.Count)
	}
	if got := checksum(b); got != f.IndexCRC {
		return Index{}, fmt.Errorf("%w: index checksum mismatch: footer has %08x, computed %08x", ErrCorrupt, f.IndexCRC, got)
	}
	entries := make([]Entry, f.Count)
	sawMin, sawMax := false, false
	for i := range entries {
		p := b[i*EntrySize : (i+1)*EntrySize]
		e := Entry{
			Idx: volume.PageIdx(binary.BigEndian.Uint32(p[0:])),
			LSN: volume.LSN(binary.BigEndian.Uint64(p[4:])),
			CRC: binary.BigEndian.Uint32(p[12:]),
		}
		switch {
		case !e.Idx.Valid():
			return Index{}, fmt.Errorf("%w: index entry %d: page index 0", ErrCorrupt, i)
		case e.LSN < f.MinLSN || e.LSN > f.MaxLSN:
			return Index{}, fmt.Errorf("%w: index entry %d (idx %d): lsn %d outside footer range [%d, %d]", ErrCorrupt, i, e.Idx, e.LSN, f.MinLSN, f.MaxLSN)
		}
		if i > 0 {
			prev := entries[i-1]
			switch c := prev.compare(e); {
			case c == 0:
				return Index{}, fmt.Errorf("%w: index entry %d: duplicate of entry %d (idx %d, lsn %d)", ErrCorrupt, i, i-1, e.Idx, e.LSN)
			case c > 0:
				return Index{}, fmt.Errorf("%w: index entry %d (idx %d, lsn %d): out of order after entry %d (idx %d, lsn %d)", ErrCorrupt, i, e.Idx, e.LSN, i-1, prev.Idx, prev.LSN)
			}
		}
		sawMin = sawMin || e.LSN == f.MinLSN
		sawMax = sawMax || e.LSN == f.MaxLSN
		entries[i] = e
	}
	if !sawMin {
		return Index{}, fmt.Errorf("%w: no index entry has footer min lsn %d", ErrCorrupt, f.MinLSN)
	}
	if !sawMax {
		return Index{}, fmt.Errorf("%w: no index entry has footer max lsn %d", ErrCorrupt, f.MaxLSN)
	}
	return Index{entries: entries}, nil
}

// Len returns the number of entries.
func (ix Index) Len() int { return len(ix.entries) }

// Entries returns a copy of the entries in index order.
func (ix Index) Entries() []Entry { return slices.Clone(ix.entries) }

// All iterates over the entries in index order, with their positions.
func (ix Index) All() iter.Seq2[int, Entry] {
	return func(yield func(int, Entry) bool) {
		for i, e := range ix.entries {
			if !yield(i, e) {
				return
			}
		}
	}
}

// Lookup finds the newest version of page idx with an LSN at most at, by
// binary search. It returns the entry and its position i, whose page is at
// PageRange(i). If the segment holds no such version (the page is absent, or
// its oldest version here is newer than at), ok is false and i is -1.
func (ix Index) Lookup(idx volume.PageIdx, at volume.LSN) (i int, e Entry, ok bool) {
	// The first entry ordered after (idx, at); the one before it, if it is a
	// version of idx, is the newest version at or before at.
	n := sort.Search(len(ix.entries), func(k int) bool {
		x := ix.entries[k]
		return x.Idx > idx || x.Idx == idx && x.LSN > at
	})
	if n == 0 || ix.entries[n-1].Idx != idx {
		return -1, Entry{}, false
	}
	return n - 1, ix.entries[n-1], true
}

// appendIndex appends the encoding of entries, in the given order, to dst.
func appendIndex(dst []byte, entries []Entry) []byte {
	for _, e := range entries {
		dst = appendEntry(dst, e)
	}
	return dst
}

// appendEntry appends the EntrySize-byte encoding of e to dst.
func appendEntry(dst []byte, e Entry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.Idx))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.LSN))
	return binary.BigEndian.AppendUint32(dst, e.CRC)
}
