package cluster

import (
	"errors"

	"github.com/hashicorp/raft"
)

// noteApplied adds the bytes of applied log entries to the count since the
// last snapshot and, past RaftTuning.SnapshotThresholdBytes, asks
// runSnapshotTrigger for a snapshot. It runs on Raft's FSM goroutine and
// never blocks.
func (n *Node) noteApplied(logs []*raft.Log) {
	limit := n.cfg.Raft.SnapshotThresholdBytes
	if limit == 0 {
		return
	}
	var b uint64
	for _, l := range logs {
		b += uint64(len(l.Data))
	}
	if n.logBytes.Add(b) >= limit {
		select {
		case n.snapReq <- struct{}{}:
		default: // one is asked for already
		}
	}
}

// runSnapshotTrigger takes a Raft snapshot whenever noteApplied asks for
// one (hashicorp/raft triggers only by entry count).
func (n *Node) runSnapshotTrigger() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.snapReq:
		}
		if n.logBytes.Load() < n.cfg.Raft.SnapshotThresholdBytes {
			continue // Raft took one meanwhile
		}
		err := n.raft.Snapshot().Error()
		switch {
		case err == nil:
			n.log.Debug("snapshot taken: log bytes since the last one reached the threshold", "threshold_bytes", n.cfg.Raft.SnapshotThresholdBytes)
		case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown):
		default:
			n.log.Warn("snapshot by log bytes", "err", err)
		}
	}
}
