//go:build !graft_bug_replica_stale_read

package client

// plantedStaleRead is off in real builds; see planted_stale_on.go.
const plantedStaleRead = false
