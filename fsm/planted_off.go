//go:build !graft_bug_skip_base_check

package fsm

// PlantedSkipBaseCheck is true only in binaries built with the build tag
// graft_bug_skip_base_check: a deliberately planted bug (commits ignore
// their base LSN and land on the head, losing updates) that the
// consistency suite must catch. Never set in a real build.
const PlantedSkipBaseCheck = false
