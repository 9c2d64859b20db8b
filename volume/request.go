package volume

import "fmt"

// Request validation shared by every server of the wire API (the cluster's
// nodes and the edge), so both reject bad input with the same message.

// ParseRequestID parses the vid field of a request; the error names the
// field and the value.
func ParseRequestID(s string) (ID, error) {
	vid, err := ParseID(s)
	if err != nil {
		return ID{}, fmt.Errorf("vid %q: %w", s, err)
	}
	return vid, nil
}

// ParseReadIndexes validates the page indexes of a ReadPages request: at
// most maxPages of them (0: no limit), none 0, no duplicates.
func ParseReadIndexes(pages []uint32, maxPages int) ([]PageIdx, error) {
	if maxPages > 0 && len(pages) > maxPages {
		return nil, fmt.Errorf("%d pages requested, limit %d (max pages per read)", len(pages), maxPages)
	}
	idxs := make([]PageIdx, len(pages))
	seen := make(map[uint32]int, len(pages))
	for i, p := range pages {
		if p == 0 {
			return nil, fmt.Errorf("pages[%d]: page index 0 is invalid", i)
		}
		if j, dup := seen[p]; dup {
			return nil, fmt.Errorf("pages[%d]: index %d duplicates pages[%d]", i, p, j)
		}
		seen[p] = i
		idxs[i] = PageIdx(p)
	}
	return idxs, nil
}

// CheckRange validates the (since, until] range of a PullGraft or
// PullCommits request (until 0: the head).
func CheckRange(since, until uint64) error {
	if until != 0 && since > until {
		return fmt.Errorf("since_lsn %d is after until_lsn %d", since, until)
	}
	return nil
}
