//go:build graft_bug_quarantine_blocks_all

package flusher

// PlantedQuarantineBlocksAll: see planted_quarantine_off.go. THIS BUILD IS
// BROKEN ON PURPOSE, to prove the consistency suite detects one volume's
// conflict stopping every volume's flushing.
const PlantedQuarantineBlocksAll = true
