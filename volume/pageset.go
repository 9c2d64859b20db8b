package volume

import (
	"iter"

	"github.com/RoaringBitmap/roaring/v2"
)

// PageSet is a set of page indexes on a 32-bit Roaring bitmap: a "graft".
//
// The zero value is an empty set ready to use; it allocates on first Add or
// Union. A PageSet holds a pointer, so once non-empty, copies of a PageSet
// value share the set the way copies of a map do; use Clone for an
// independent copy. A PageSet never contains the invalid index 0. It is not
// safe for concurrent mutation; concurrent reads are safe.
type PageSet struct {
	bm *roaring.Bitmap
}

// NewPageSet returns a set holding idxs. The invalid index 0 is ignored.
func NewPageSet(idxs ...PageIdx) PageSet {
	var s PageSet
	for _, idx := range idxs {
		s.Add(idx)
	}
	return s
}

// AllPages returns the set of every page of a volume of pageCount pages,
// [1, pageCount]: the graft a pulling client gets across a retention
// horizon.
func AllPages(pageCount uint32) PageSet {
	if pageCount == 0 {
		return PageSet{}
	}
	bm := roaring.New()
	bm.AddRange(1, uint64(pageCount)+1)
	return PageSet{bm: bm}
}

// Add inserts idx. The invalid index 0 is ignored, so that every PageSet
// encodes to bytes that DecodePageSet accepts; validate indexes first (for
// example with ValidateCommit).
func (s *PageSet) Add(idx PageIdx) {
	if !idx.Valid() {
		return
	}
	if s.bm == nil {
		s.bm = roaring.New()
	}
	s.bm.Add(uint32(idx))
}

// Union adds every index of o to s, in place. o is not modified and s does
// not share memory with o afterwards.
func (s *PageSet) Union(o PageSet) {
	if o.bm == nil || o.bm.IsEmpty() {
		return
	}
	if s.bm == nil {
		s.bm = o.bm.Clone()
		return
	}
	s.bm.Or(o.bm)
}

// Contains reports whether idx is in s.
func (s PageSet) Contains(idx PageIdx) bool {
	return s.bm != nil && s.bm.Contains(uint32(idx))
}

// Len returns the number of indexes in s. It can reach MaxPageIdx, which
// needs a 64-bit int.
func (s PageSet) Len() int {
	if s.bm == nil {
		return 0
	}
	return int(s.bm.GetCardinality())
}

// IsEmpty reports whether s has no indexes.
func (s PageSet) IsEmpty() bool {
	return s.bm == nil || s.bm.IsEmpty()
}

// Slice returns the indexes of s in ascending order. It allocates 4 bytes
// per index: check Len, or use All, before materializing a set that came
// from an untrusted peer (a few hundred KB of encoded runs can hold 2^32-1
// indexes).
func (s PageSet) Slice() []PageIdx {
	out := make([]PageIdx, 0, s.Len())
	for idx := range s.All() {
		out = append(out, idx)
	}
	return out
}

// All returns an iterator over the indexes of s in ascending order. s must
// not be modified during the iteration.
func (s PageSet) All() iter.Seq[PageIdx] {
	return func(yield func(PageIdx) bool) {
		if s.bm == nil {
			return
		}
		for v := range roaring.Values(s.bm) {
			if !yield(PageIdx(v)) {
				return
			}
		}
	}
}

// Clone returns an independent copy of s.
func (s PageSet) Clone() PageSet {
	if s.bm == nil {
		return PageSet{}
	}
	return PageSet{bm: s.bm.Clone()}
}

// Equal reports whether s and o hold the same indexes. Internal container
// layout (for example run-optimized or not) does not matter.
func (s PageSet) Equal(o PageSet) bool {
	if s.IsEmpty() || o.IsEmpty() {
		return s.IsEmpty() == o.IsEmpty()
	}
	return s.bm.Equals(o.bm)
}

// Bitmap returns the underlying bitmap as a read-only view: the caller must
// not modify it. For the zero value it returns a new empty bitmap.
func (s PageSet) Bitmap() *roaring.Bitmap {
	if s.bm == nil {
		return roaring.New()
	}
	return s.bm
}

// MarshalBinary implements encoding.BinaryMarshaler with the portable
// Roaring format (https://github.com/RoaringBitmap/RoaringFormatSpec),
// run-optimized. s itself is not modified: a clone is optimized.
func (s PageSet) MarshalBinary() ([]byte, error) {
	if s.bm == nil {
		return roaring.New().ToBytes()
	}
	c := s.bm.Clone()
	c.RunOptimize()
	return c.ToBytes()
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler with DecodePageSet.
// On error s is left unchanged.
func (s *PageSet) UnmarshalBinary(b []byte) error {
	d, err := DecodePageSet(b)
	if err != nil {
		return err
	}
	*s = d
	return nil
}
