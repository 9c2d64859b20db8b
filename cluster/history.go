package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

// The read path across the flush boundary: what is buffered comes from the
// FSM, what was flushed from the object store through the node's Reader.
// A flush round may trim the buffer between two calls; the history only
// grows, so each function reads the history first, splits the request at
// its watermark, and starts over (a bounded number of times) if the buffer
// moved past the split meanwhile.

// maxSplitRetries bounds the restarts of a read that raced with trims.
const maxSplitRetries = 8

// snapshotAt returns the volume's snapshot at lsn (0: the head).
func (n *Node) snapshotAt(ctx context.Context, vid volume.ID, lsn volume.LSN) (volume.Snapshot, error) {
	snap, err := n.fsm.SnapshotAt(vid, lsn)
	if !errors.Is(err, fsm.ErrNotBuffered) || n.reader == nil {
		return snap, err
	}
	return n.reader.Snapshot(ctx, n.fsm.History(vid), lsn)
}

// readPages returns the pages visible at lsn (0: the head).
func (n *Node) readPages(ctx context.Context, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []fsm.PageVersion, error) {
	r, err := n.fsm.ReadPages(vid, lsn, idxs)
	if errors.Is(err, fsm.ErrNotBuffered) && n.reader != nil {
		return n.reader.ReadSnapshotAt(ctx, n.fsm.History(vid), lsn, idxs)
	}
	if err != nil || len(r.Missing) == 0 {
		return r.Snapshot, r.Pages, err
	}
	if n.reader == nil {
		return volume.Snapshot{}, nil, fmt.Errorf("%w: %d pages of %s are flushed and no object store is configured", fsm.ErrNotBuffered, len(r.Missing), vid)
	}
	sub := make([]volume.PageIdx, len(r.Missing))
	for i, pos := range r.Missing {
		sub[i] = idxs[pos]
	}
	// The buffer held no version at or below the snapshot of these pages,
	// so their version is the newest flushed one at or below it.
	got, err := n.reader.ReadPages(ctx, r.History, min(r.Snapshot.LSN, r.History.Flushed), sub)
	if err != nil {
		return volume.Snapshot{}, nil, err
	}
	for i, pos := range r.Missing {
		r.Pages[pos] = got[i]
	}
	n.metrics.historyPages.Add(float64(len(sub)))
	return r.Snapshot, r.Pages, nil
}

// graft returns the union of pages changed in (since, until] (until 0: the
// head) and the snapshot at until.
func (n *Node) graft(ctx context.Context, vid volume.ID, since, until volume.LSN) (volume.Snapshot, volume.PageSet, error) {
	for attempt := 0; ; attempt++ {
		h := n.fsm.History(vid)
		if n.reader == nil || since >= h.Flushed {
			snap, set, err := n.fsm.Graft(vid, since, until)
			if errors.Is(err, fsm.ErrNotBuffered) && n.reader != nil && attempt < maxSplitRetries {
				continue
			}
			return snap, set, err
		}
		if until != 0 && until <= h.Flushed {
			snap, err := n.reader.Snapshot(ctx, h, until)
			if err != nil {
				return volume.Snapshot{}, volume.PageSet{}, err
			}
			set, err := n.reader.Graft(ctx, h, since, until)
			return snap, set, err
		}
		snap, newer, err := n.fsm.Graft(vid, h.Flushed, until)
		if errors.Is(err, fsm.ErrNotBuffered) && attempt < maxSplitRetries {
			continue
		}
		if err != nil {
			return volume.Snapshot{}, volume.PageSet{}, err
		}
		set, err := n.reader.Graft(ctx, h, since, h.Flushed)
		if err != nil {
			return volume.Snapshot{}, volume.PageSet{}, err
		}
		set.Union(newer)
		return snap, set, nil
	}
}

// commits returns metadata of up to limit (0: all) commits in (since,
// until], the snapshot at until, and whether the limit cut it short.
func (n *Node) commits(ctx context.Context, vid volume.ID, since, until volume.LSN, limit int) (volume.Snapshot, []fsm.CommitInfo, bool, error) {
	for attempt := 0; ; attempt++ {
		h := n.fsm.History(vid)
		if n.reader == nil || since >= h.Flushed {
			snap, out, more, err := n.fsm.Commits(vid, since, until, limit)
			if errors.Is(err, fsm.ErrNotBuffered) && n.reader != nil && attempt < maxSplitRetries {
				continue
			}
			return snap, out, more, err
		}
		if until != 0 && until <= h.Flushed {
			snap, err := n.reader.Snapshot(ctx, h, until)
			if err != nil {
				return volume.Snapshot{}, nil, false, err
			}
			out, err := n.reader.Commits(ctx, h, since, until, limit)
			if err != nil {
				return volume.Snapshot{}, nil, false, err
			}
			more := len(out) > 0 && out[len(out)-1].LSN < until
			return snap, out, more, nil
		}
		out, err := n.reader.Commits(ctx, h, since, h.Flushed, limit)
		if err != nil {
			return volume.Snapshot{}, nil, false, err
		}
		rest := 0
		if limit > 0 {
			rest = limit - len(out)
		}
		if limit > 0 && rest == 0 {
			snap, err := n.fsm.SnapshotAt(vid, until)
			if errors.Is(err, fsm.ErrNotBuffered) && attempt < maxSplitRetries {
				continue
			}
			return snap, out, snap.LSN > h.Flushed || out[len(out)-1].LSN < h.Flushed, err
		}
		snap, newer, more, err := n.fsm.Commits(vid, h.Flushed, until, rest)
		if errors.Is(err, fsm.ErrNotBuffered) && attempt < maxSplitRetries {
			continue
		}
		if err != nil {
			return volume.Snapshot{}, nil, false, err
		}
		return snap, append(out, newer...), more, nil
	}
}

// flushedCommit looks a commit up in the flushed history: it tells whether
// a commit whose base+1 is no longer buffered is a retry of the one that
// got that LSN. ok is false when lsn is not flushed.
func (n *Node) flushedCommit(ctx context.Context, vid volume.ID, lsn volume.LSN) (fsm.CommitInfo, bool, error) {
	if n.reader == nil {
		return fsm.CommitInfo{}, false, nil
	}
	h := n.fsm.History(vid)
	if lsn == 0 || lsn > h.Flushed || (h.Checkpoint == 0 && len(h.Froms) > 0 && lsn < h.Froms[0]) {
		return fsm.CommitInfo{}, false, nil
	}
	// At or below the newest checkpoint the reader finds the commit in the
	// bucket's older checkpoints and records.
	c, err := n.reader.Commit(ctx, h, lsn)
	return c, err == nil, err
}
