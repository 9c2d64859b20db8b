//go:build graft_bug_ignore_commit_hash

package fsm

// PlantedIgnoreCommitHash: see planted_hash_off.go. THIS BUILD IS BROKEN
// ON PURPOSE, to prove the consistency suite detects it.
const PlantedIgnoreCommitHash = true
