//go:build graft_bug_replica_stale_read

package client

// plantedStaleRead: a read of a pending page serves the replica's older
// local version instead of fetching the new one (a stale cache), for the
// consistency suite to catch (jepsen.PlantedBugs).
const plantedStaleRead = true
