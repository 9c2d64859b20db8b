package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/fsm"
)

// Commit batching on the leader. hashicorp/raft's cost is per log entry
// (encode, store, replicate, apply, future), so concurrent commits are
// coalesced into one entry (fsm.EncodeCommitBatch) that Apply decides in
// order exactly as separate entries.
//
// One goroutine, the proposer, owns the queue. It takes the oldest queued
// commit, waits for a free in-flight slot (Config.CommitBatchInFlight
// entries proposed and not yet applied), then takes whatever else is queued
// at that moment, up to MaxCommitBatch commits and MaxCommitBatchBytes,
// proposes them as one entry and goes back to the queue; a goroutine per
// entry waits for its future and hands each caller its own result. Nothing
// ever waits for more commits to arrive: with no concurrency a slot is free
// and a commit is proposed alone at once, exactly as without batching;
// batches form only from commits that queued while earlier entries were in
// flight.

// commitReq is one commit waiting to be proposed.
type commitReq struct {
	ctx  context.Context
	cmd  *fsm.CommitCommand
	size int             // encoded commit body bytes
	done chan commitDone // buffered: the proposer never blocks on a caller
}

type commitDone struct {
	res *fsm.CommitResult
	err error
}

// commitQueueLen bounds the commits waiting for the proposer; past it
// callers block in submit (backpressure), bounded by their ctx.
const commitQueueLen = 4096

// batching reports whether commits go through the proposer.
func (n *Node) batching() bool { return n.cfg.MaxCommitBatch > 1 }

// startBatcher starts the proposer when batching is on.
func (n *Node) startBatcher() {
	if !n.batching() {
		return
	}
	n.commitQ = make(chan *commitReq, commitQueueLen)
	n.slots = make(chan struct{}, n.cfg.CommitBatchInFlight)
	n.wg.Add(1)
	go n.runProposer()
}

// proposeCommit runs c through the proposer and returns its own result.
// The errors are apply's: ErrNotLeader when it was certainly not appended,
// ErrUnknownOutcome when it may commit.
func (n *Node) proposeCommit(ctx context.Context, c *fsm.CommitCommand) (*fsm.CommitResult, error) {
	r := &commitReq{ctx: ctx, cmd: c, size: fsm.CommitLen(c), done: make(chan commitDone, 1)}
	select {
	case n.commitQ <- r:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: queue commit: %w", ErrNotLeader, ctx.Err())
	case <-n.ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrNotLeader, ErrClosed)
	}
	select {
	case d := <-r.done:
		return d.res, d.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, ctx.Err())
	case <-n.ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, ErrClosed)
	}
}

// runProposer is the proposer loop (see the top of this file). It ends
// when the node closes; callers still queued then give up on n.ctx.
func (n *Node) runProposer() {
	defer n.wg.Done()
	var next *commitReq // taken from the queue but over the last batch's bytes
	batch := make([]*commitReq, 0, n.cfg.MaxCommitBatch)
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-n.commitQ:
			case <-n.ctx.Done():
				return
			}
		}
		select {
		case n.slots <- struct{}{}:
		case <-n.ctx.Done():
			first.done <- commitDone{err: fmt.Errorf("%w: %w", ErrNotLeader, ErrClosed)}
			return
		}
		batch = append(batch[:0], first)
		bytes := first.size
	fill:
		for len(batch) < n.cfg.MaxCommitBatch {
			select {
			case r := <-n.commitQ:
				if bytes+r.size > n.cfg.MaxCommitBatchBytes {
					next = r
					break fill
				}
				batch = append(batch, r)
				bytes += r.size
			default:
				break fill
			}
		}
		n.proposeBatch(batch)
	}
}

// proposeBatch proposes batch as one entry and starts the goroutine that
// answers its callers; it holds one in-flight slot until then.
func (n *Node) proposeBatch(batch []*commitReq) {
	// A caller that already gave up is not proposed: it was told "unknown
	// outcome", and leaving it out is one of the outcomes.
	live := make([]*commitReq, 0, len(batch))
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 || n.raft.State() != raft.Leader {
		for _, r := range live {
			r.done <- commitDone{err: ErrNotLeader}
		}
		<-n.slots
		return
	}
	cmds := make([]*fsm.CommitCommand, len(live))
	for i, r := range live {
		cmds[i] = r.cmd
	}
	f := n.raft.Apply(fsm.EncodeCommitBatch(cmds), n.cfg.ForwardTimeout)
	n.metrics.commitBatch.Observe(float64(len(live)))
	n.batchEntries.Add(1)
	n.batchCommits.Add(uint64(len(live)))
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() { <-n.slots }()
		answerBatch(live, f.Error(), f)
	}()
}

// answerBatch hands each caller of a proposed batch its own result.
func answerBatch(live []*commitReq, err error, f raft.ApplyFuture) {
	if err != nil {
		err = applyError(err)
		for _, r := range live {
			r.done <- commitDone{err: err}
		}
		return
	}
	switch resp := f.Response().(type) {
	case *fsm.CommitBatchResult:
		if len(resp.Results) == len(live) {
			for i, r := range live {
				r.done <- commitDone{res: resp.Results[i]}
			}
			return
		}
	case *fsm.CommitResult:
		// One commit alone, or an entry Apply rejected as a whole.
		if len(live) == 1 || resp.Err != nil {
			for _, r := range live {
				r.done <- commitDone{res: resp}
			}
			return
		}
	}
	err = fmt.Errorf("apply commit batch of %d: unexpected response %T", len(live), f.Response())
	for _, r := range live {
		r.done <- commitDone{err: err}
	}
}

// applyError classifies the error of a proposal's future: not appended
// (ErrNotLeader) or outcome unknown.
func applyError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
}
