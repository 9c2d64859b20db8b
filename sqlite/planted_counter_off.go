//go:build !graft_bug_vfs_own_counter

package sqlite

// plantedOwnCounter is the planted bug graft_bug_vfs_own_counter (see
// planted_counter_on.go, jepsen.PlantedBugs): off in every normal build.
const plantedOwnCounter = false
