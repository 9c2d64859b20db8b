//go:build graft_bug_compact_drop_page

package flusher

import (
	"slices"

	"github.com/graft-cluster/graft/segment"
)

// plantedCompact is a deliberately planted bug, built only with the tag
// graft_bug_compact_drop_page: compaction drops one page from every
// table it relocates (the last page it moved: from the new checkpoint and
// from each retained checkpoint it writes again as a new generation), so
// snapshots read from them see the page as never written (zeros) though an
// earlier commit wrote it. THIS BUILD IS BROKEN ON PURPOSE, to prove the tests and
// the consistency suite detect it. Never set in a real build.
func (f *Flusher) plantedCompact(ck *segment.Checkpoint, moved []int) {
	if len(moved) < 2 {
		return // keep every segment of the table referenced (it must decode)
	}
	i := moved[len(moved)-1]
	ck.Pages = slices.Delete(ck.Pages, i, i+1)
}
