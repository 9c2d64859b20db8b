//go:build graft_bug_skip_base_check

package fsm

// PlantedSkipBaseCheck: see planted_off.go. THIS BUILD IS BROKEN ON
// PURPOSE, to prove the consistency suite detects lost updates.
const PlantedSkipBaseCheck = true
