package volume

import (
	"cmp"
	"fmt"
	"slices"
)

// PageWrite is one page of a commit: the page at Idx becomes Data.
type PageWrite struct {
	Idx  PageIdx
	Data []byte
}

// Limits bounds one commit.
type Limits struct {
	// MaxPages is the maximum number of pages per commit; 0 or less means no
	// limit.
	MaxPages int
}

// ValidateCommit checks a commit's pages against the volume's new page count
// and limits, and returns them sorted by Idx ascending in a new slice (the
// page data is not copied).
//
// Every page must have an index in [1, pageCount], exactly PageSize bytes,
// and an index no other page of the commit has. An empty commit (no pages) is
// valid: it may change only the page count.
//
// Errors wrap ErrInvalidCommit (a wrong page size wraps ErrInvalidPage too)
// and name the offending page by its position in pages and its index:
//
//	volume: invalid commit: page 3 (idx 0): page index 0 is invalid
//	volume: invalid commit: page 2 (idx 9): index beyond page_count 8
//	volume: invalid commit: page 0 (idx 5): page is 100 bytes, want 4096
//	volume: invalid commit: page 4 (idx 7): duplicate of page 1
//	volume: invalid commit: 300 pages, limit 256 (max pages per commit)
//
// When several pages are wrong, the first one in request order is reported,
// and index, range and size errors take precedence over duplicates.
func ValidateCommit(pageCount uint32, pages []PageWrite, limits Limits) ([]PageWrite, error) {
	if limits.MaxPages > 0 && len(pages) > limits.MaxPages {
		return nil, fmt.Errorf("%w: %d pages, limit %d (max pages per commit)", ErrInvalidCommit, len(pages), limits.MaxPages)
	}
	sorted := true
	for i, p := range pages {
		switch {
		case !p.Idx.Valid():
			return nil, fmt.Errorf("%w: pages[%d] (idx %d): page index 0 is invalid", ErrInvalidCommit, i, p.Idx)
		case uint32(p.Idx) > pageCount:
			return nil, fmt.Errorf("%w: pages[%d] (idx %d): index beyond page_count %d", ErrInvalidCommit, i, p.Idx, pageCount)
		case len(p.Data) != PageSize:
			return nil, &commitPageError{
				msg: fmt.Sprintf("%s: pages[%d] (idx %d): page is %d bytes, want %d", ErrInvalidCommit, i, p.Idx, len(p.Data), PageSize),
			}
		}
		if i > 0 && p.Idx <= pages[i-1].Idx {
			sorted = false
		}
	}
	out := make([]PageWrite, len(pages))
	if sorted {
		// Strictly ascending, so no duplicates either: the common case.
		copy(out, pages)
		return out, nil
	}

	// Sort request positions by (idx, position): equal indexes become
	// adjacent runs whose first element is the first occurrence.
	order := make([]int, len(pages))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(pages[a].Idx, pages[b].Idx); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	// Report the repeat that comes earliest in the request.
	dup, first, start := -1, -1, 0
	for k := 1; k < len(order); k++ {
		if pages[order[k]].Idx != pages[order[start]].Idx {
			start = k
			continue
		}
		if dup == -1 || order[k] < dup {
			dup, first = order[k], order[start]
		}
	}
	if dup != -1 {
		return nil, fmt.Errorf("%w: pages[%d] (idx %d): duplicate of pages[%d]", ErrInvalidCommit, dup, pages[dup].Idx, first)
	}
	for k, i := range order {
		out[k] = pages[i]
	}
	return out, nil
}

// commitPageError is ValidateCommit's wrong-size error: it wraps both
// ErrInvalidCommit and ErrInvalidPage under a single message.
type commitPageError struct{ msg string }

func (e *commitPageError) Error() string { return e.msg }

func (e *commitPageError) Unwrap() []error { return []error{ErrInvalidCommit, ErrInvalidPage} }
