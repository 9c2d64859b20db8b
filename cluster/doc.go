// Package cluster runs a graft node: a hashicorp/raft replica of the fsm
// with a durable raft-boltdb/v2 log (fsync on every append), a TCP
// transport, and the Connect services clients use.
//
// Commit path: any node validates a commit; a follower forwards it to the
// leader over one multiplexed HTTP/2 connection; the leader hashes it,
// proposes one log entry (concurrent proposals share one disk write: Raft's
// group commit), and answers once the entry is committed by a quorum and
// applied. Acceptance is decided only in fsm.Apply.
//
// Read path: linearizable reads use ReadIndex (the leader's commit index,
// confirmed by a quorum round, then waiting for apply; followers ask the
// leader for the index and serve locally), at_least_lsn reads wait until
// this node has applied the LSN, stale reads serve what is applied.
//
// Every raft future is wrapped into a ctx-aware call here and nowhere else.
package cluster
