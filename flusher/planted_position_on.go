//go:build graft_bug_compact_death_positions

package flusher

// plantedPositions is a deliberately planted bug, built only with the tag
// graft_bug_compact_death_positions: compaction locates each moved version
// at its rank in the order it chose the segment's versions in (by when
// they leave retention), not at its rank in the segment's index order
// ((idx, lsn), how the segment is written). Checkpoints and rewritten
// generations then point most moved versions at another page of the
// compacted segment: reads through them fail the page CRC. THIS BUILD IS
// BROKEN ON PURPOSE, to prove the tests and the consistency suite detect
// it. Never set in a real build.
func (f *Flusher) plantedPositions(_, byDeath []int) []int { return byDeath }
