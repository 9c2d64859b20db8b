package fsm

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// LocalLog applies proposals to an FSM in order, as a one-node Raft would:
// the flusher's Proposer for in-process benches and tests that run it
// without a cluster. Safe for concurrent use.
type LocalLog struct {
	mu    sync.Mutex
	f     *FSM
	index uint64
}

// NewLocalLog returns a LocalLog applying to f.
func NewLocalLog(f *FSM) *LocalLog { return &LocalLog{f: f} }

// Propose applies cmd as the next log entry and returns Apply's result.
func (l *LocalLog) Propose(_ context.Context, cmd []byte) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	return l.f.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: cmd}), nil
}
