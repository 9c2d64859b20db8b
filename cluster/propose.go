package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

// apply proposes one command on the leader and waits until it is committed
// by a quorum (on disk) and applied, returning the FSM's response.
//
// Outcomes: ErrNotLeader when the entry was certainly not appended (safe to
// send elsewhere); ErrUnknownOutcome when it may or may not commit
// (leadership lost, shutdown, or ctx ended while in flight).
func (n *Node) apply(ctx context.Context, cmd []byte) (any, error) {
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	f := n.raft.Apply(cmd, timeoutFor(ctx, n.cfg.ForwardTimeout))
	if err := waitFuture(ctx, f); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return nil, applyError(err)
	}
	return f.Response(), nil
}

// commitArgs is a validated commit request.
type commitArgs struct {
	vid       volume.ID
	base      volume.LSN
	pageCount uint32
	pages     []volume.PageWrite // sorted, validated
}

// commitLocal runs a commit on this node, which must be the leader. A base
// that is already below the applied head is answered without a Raft round
// trip: with the original result for an identical retry, with a rejection
// otherwise. Both are facts of committed state; acceptance is decided only
// in Apply.
func (n *Node) commitLocal(ctx context.Context, a commitArgs) (*fsm.CommitResult, error) {
	hash := volume.CommitHash(a.vid, a.base+1, a.pageCount, a.pages)
	if head := n.fsm.Head(a.vid); head.LSN > a.base && !fsm.PlantedSkipBaseCheck {
		if res, ok, err := n.knownCommit(ctx, a.vid, a.base, hash, head); ok {
			return res, err
		}
		// Not decidable from committed state here: let Apply decide.
	}
	if err := n.waitRecovered(ctx); err != nil {
		return nil, fmt.Errorf("%w: the cluster is still recovering volumes from the object store: %w", ErrNotLeader, err)
	}
	c := &fsm.CommitCommand{
		VID:                  a.vid,
		BaseLSN:              a.base,
		PageCount:            a.pageCount,
		TimeUnixMs:           time.Now().UnixMilli(),
		MaxBufferBytes:       n.cfg.Limits.MaxBufferBytes,
		MaxVolumeBufferBytes: n.cfg.Limits.MaxVolumeBufferBytes,
		Hash:                 hash,
		Pages:                a.pages,
	}
	res, err := n.proposeOne(ctx, c)
	if err != nil {
		return nil, err
	}
	var stale *fsm.StaleError
	if errors.As(res.Err, &stale) && stale.Flushed {
		if res, ok, err := n.knownCommit(ctx, a.vid, a.base, hash, stale.Head); ok {
			return res, err
		}
	}
	if res.Err != nil {
		return nil, res.Err
	}
	if n.flusher != nil && n.fsm.BufferBytes() >= n.cfg.Flush.TargetBytes {
		n.flusher.Kick()
	}
	return res, nil
}

// proposeOne proposes c, in a batch with concurrent commits when batching
// is on, else as its own entry, and returns its own result.
func (n *Node) proposeOne(ctx context.Context, c *fsm.CommitCommand) (*fsm.CommitResult, error) {
	if n.batching() {
		if n.raft.State() != raft.Leader {
			return nil, ErrNotLeader
		}
		return n.proposeCommit(ctx, c)
	}
	resp, err := n.apply(ctx, fsm.EncodeCommit(c))
	if err != nil {
		return nil, err
	}
	res, ok := resp.(*fsm.CommitResult)
	if !ok {
		return nil, fmt.Errorf("apply commit: unexpected response %T", resp)
	}
	return res, nil
}

// knownCommit answers a commit whose base is below the head from committed
// state: the original result for an identical retry, a rejection for
// anything else. The commit at base+1 is looked up in the buffer, else in
// the flushed history. ok is false when neither holds it.
func (n *Node) knownCommit(ctx context.Context, vid volume.ID, base volume.LSN, hash volume.Hash, head volume.Snapshot) (*fsm.CommitResult, bool, error) {
	lsn := base + 1
	pc, h, ok := n.fsm.CommitAt(vid, lsn)
	if !ok {
		c, found, err := n.flushedCommit(ctx, vid, lsn)
		if errors.Is(err, fsm.ErrRetention) {
			return nil, true, fmt.Errorf("%w: commit on base_lsn %d of %s (head is lsn %d): lsn %d was either this commit or another, "+
				"and the log records that would tell are collected: %w; pull the volume and commit on its head",
				ErrOutcomeCollected, base, vid, head.LSN, lsn, err)
		}
		if err != nil {
			// Cannot tell a retry of a flushed commit from a stale one.
			return nil, true, fmt.Errorf("%w: look up flushed commit %s@%d: %w", ErrUnknownOutcome, vid, lsn, err)
		}
		if !found {
			return nil, false, nil
		}
		pc, h = c.PageCount, c.Hash
	}
	if h == hash || fsm.PlantedIgnoreCommitHash {
		return &fsm.CommitResult{Snapshot: volume.Snapshot{VID: vid, LSN: lsn, PageCount: pc}, Hash: h, Duplicate: true}, true, nil
	}
	return nil, true, &fsm.StaleError{Base: base, Head: head}
}

// readIndex returns an index that a linearizable read must wait for
// (Raft thesis section 6.4). On a follower: ask the leader. On the leader:
// see leaderReadIndex.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return n.forwardReadIndex(ctx)
	}
	return n.leaderReadIndex(ctx)
}

// leaderReadIndex is the leader's half of ReadIndex, for a term T:
//
//  1. wait until the barrier this node issued on winning T is applied (so
//     its commit index covers everything earlier leaders committed),
//  2. take the commit index,
//  3. confirm leadership with a quorum round (VerifyLeader),
//  4. check that the term is still T and T's barrier still the applied
//     one; otherwise start over.
//
// Step 4 is what makes step 3 mean "leader in T". VerifyLeader confirms
// leadership at the time it runs, in whatever term that is: a leader that
// took the index in T, lost an election to a node that acknowledged a
// write, and won T+2 passes it, yet its index predates the write. Retries
// are bounded by ctx. Not the leader: ErrNotLeader.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	for {
		term, err := n.waitLeaderBarrier(ctx)
		if err != nil {
			return 0, err
		}
		idx := n.raft.CommitIndex()
		runHook(n.hook().afterCommitIndex)
		if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return 0, fmt.Errorf("%w: %w", ErrNotLeader, err)
			}
			return 0, fmt.Errorf("verify leadership: %w", err)
		}
		if n.raft.CurrentTerm() == term && n.readyFor(term) {
			return idx, nil
		}
		n.log.Debug("leadership changed during read index; retrying", "term", term)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("read index: %w", err)
		}
	}
}

// waitLeaderBarrier waits until this node leads and the barrier it issued
// on winning the current term is applied, and returns that term. Not the
// leader: ErrNotLeader.
func (n *Node) waitLeaderBarrier(ctx context.Context) (uint64, error) {
	for {
		term := n.raft.CurrentTerm()
		n.mu.Lock()
		ready, ch := n.readyTerm, n.readyCh
		n.mu.Unlock()
		if n.raft.State() != raft.Leader {
			return 0, ErrNotLeader
		}
		if ready == term && ready != 0 {
			return term, nil
		}
		runHook(n.hook().barrierWait)
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for leader barrier: %w", ctx.Err())
		}
	}
}

// readyFor reports whether term's leader barrier is the applied one.
func (n *Node) readyFor(term uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.readyTerm == term
}

// waitApplied waits until the FSM reflects every log entry up to index.
//
// hashicorp/raft hands only command and configuration entries to the FSM;
// no-ops (one per election) and barriers never reach it, and raft's own
// AppliedIndex advances when entries are queued for the FSM, not when they
// are applied. So the index to wait for is the last FSM-visible entry at or
// below index, found by stepping back over the (rare) invisible ones.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	// First, until raft has queued every entry up to index for the FSM (on a
	// follower the entries may not even be in its log yet).
	for n.raft.AppliedIndex() < index {
		t := time.NewTimer(time.Millisecond)
		select {
		case <-n.fsm.Changed():
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for log index %d: %w", index, ctx.Err())
		}
		t.Stop()
	}
	target := index
	for target > n.fsm.Applied() {
		var l raft.Log
		if err := n.logs.GetLog(target, &l); err != nil {
			// Compacted into a snapshot, which the FSM was restored from
			// or took itself: everything up to here is applied.
			target = 0
			break
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			break
		}
		target--
	}
	return n.fsm.WaitApplied(ctx, target)
}
