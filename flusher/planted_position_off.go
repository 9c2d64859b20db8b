//go:build !graft_bug_compact_death_positions

package flusher

// plantedPositions returns the order whose k-th version is at position k
// of a compacted segment: its index order. Only in binaries built with the
// build tag graft_bug_compact_death_positions (planted_position_on.go) is
// it the order compaction chose the segment's versions in.
func (f *Flusher) plantedPositions(sorted, _ []int) []int { return sorted }
