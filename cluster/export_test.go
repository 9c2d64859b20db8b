package cluster

import "context"

// Hooks are the test seams of a node (see testHooks); nil fields do
// nothing.
type Hooks struct {
	AfterCommitIndex func()
	BarrierWait      func()
	BeforeApply      func()
	RecoveryWait     func()
}

// SetHooks replaces the node's test hooks.
func (n *Node) SetHooks(h Hooks) {
	n.hooks.Store(&testHooks{
		afterCommitIndex: h.AfterCommitIndex,
		barrierWait:      h.BarrierWait,
		beforeApply:      h.BeforeApply,
		recoveryWait:     h.RecoveryWait,
	})
}

// ReadIndex runs the node's ReadIndex (a follower asks the leader).
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) { return n.readIndex(ctx) }

// CommitBatching reports the leader's commit proposer: commits queued,
// whether every in-flight slot is taken, and the entries and commits it
// proposed so far.
func (n *Node) CommitBatching() (queued int, slotsFull bool, entries, commits uint64) {
	return len(n.commitQ), len(n.slots) == cap(n.slots), n.batchEntries.Load(), n.batchCommits.Load()
}
