//go:build !graft_bug_compact_drop_page

package flusher

import "github.com/graft-cluster/graft/segment"

// plantedCompact drops one moved page from a compacted checkpoint in
// binaries built with the build tag graft_bug_compact_drop_page (see
// planted_compact_on.go); in every other build it does nothing.
func (f *Flusher) plantedCompact(*segment.Checkpoint, []int) {}
