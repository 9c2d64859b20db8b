//go:build !graft_bug_skip_read_index

package cluster

// plantedSkipReadIndex is true only in binaries built with the build tag
// graft_bug_skip_read_index: a deliberately planted bug (a node that
// believes it is the leader answers linearizable reads from its local
// state, without ReadIndex and VerifyLeader, so a deposed leader that has
// not noticed yet serves stale data) that the consistency suite must
// catch. Never set in a real build.
const plantedSkipReadIndex = false
