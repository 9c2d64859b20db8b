//go:build graft_bug_vfs_own_counter

package sqlite

// plantedOwnCounter is a deliberately planted bug, built only with the tag
// graft_bug_vfs_own_counter: the own-commit exception of counterFor (a
// connection keeps its cache after its own commit) matches the volume, not
// the snapshot, so after a connection's first commit every later snapshot
// shows it the counter it already holds: SQLite never flushes its page
// cache, reads return the state of its last commit, and its transactions
// write pages computed on that stale state onto the head. THIS BUILD IS
// BROKEN ON PURPOSE, to prove the tests and the consistency suite detect
// it (jepsen.PlantedBugs). Never set in a real build.
const plantedOwnCounter = true
