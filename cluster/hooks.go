package cluster

// testHooks are seams for tests that must force an interleaving a real
// cluster produces only by chance (a leadership change between two steps
// of a read, an FSM that lags behind its log). Production code never sets
// them: every field is nil and every call site is a nil check. The test
// binary sets them through export_test.go.
type testHooks struct {
	// afterCommitIndex runs in the leader's readIndex after it took the
	// commit index and before it confirms leadership.
	afterCommitIndex func()
	// barrierWait runs each time a caller on the leader starts waiting for
	// the current term's barrier to be applied.
	barrierWait func()
	// beforeApply runs on Raft's FSM goroutine before each batch is
	// applied; blocking in it holds this node's FSM behind its log.
	beforeApply func()
	// recoveryWait runs each time a request starts waiting for recovery
	// from the object store.
	recoveryWait func()
}

// noHooks is what hook returns when no test set any.
var noHooks = &testHooks{}

// hook returns the node's test hooks (never nil).
func (n *Node) hook() *testHooks {
	if h := n.hooks.Load(); h != nil {
		return h
	}
	return noHooks
}

// runHook calls f if it is set.
func runHook(f func()) {
	if f != nil {
		f()
	}
}
