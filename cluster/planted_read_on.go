//go:build graft_bug_skip_read_index

package cluster

// plantedSkipReadIndex: see planted_read_off.go. THIS BUILD IS BROKEN ON
// PURPOSE, to prove the consistency suite detects stale reads served by a
// deposed leader.
const plantedSkipReadIndex = true
