//go:build !graft_bug_ignore_commit_hash

package fsm

// PlantedIgnoreCommitHash is true only in binaries built with the build
// tag graft_bug_ignore_commit_hash: a deliberately planted bug in commit
// idempotency (a commit on a base whose next LSN is taken is answered as a
// duplicate of the commit there whatever its hash, so a different commit
// is acknowledged but never applied) that the consistency suite must
// catch. Never set in a real build.
const PlantedIgnoreCommitHash = false
