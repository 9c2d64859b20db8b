package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/volume"
)

// PushResult is the outcome of a Push.
type PushResult struct {
	// Pushed is false when there was nothing to push.
	Pushed bool
	// Resent reports that the push resent a recorded push of unknown
	// outcome (after a crash or a network failure).
	Resent bool
	// RemoteLSN is the remote LSN the pushed commit got.
	RemoteLSN volume.LSN
	// Pages is the number of pages pushed; Hash the commit's hash.
	Pages int
	Hash  volume.Hash
	// Snapshot is the latest local snapshot after the push.
	Snapshot Snapshot
}

// Push sends the local commits not pushed yet as one remote commit on the
// remote LSN they are based on. The push is recorded durably (base, page
// count, pages, hash) before it is sent; a push whose outcome is unknown
// (a crash, the cluster unreachable) stays recorded and the next Push
// resends the identical commit, which the cluster answers with the
// original LSN if it had committed. A stale base answers an error
// matching ErrRejected and leaves StatusRejectedCommit with the local
// commits intact.
func (v *Volume) Push(ctx context.Context) (PushResult, error) {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	return v.pushLocked(ctx)
}

func (v *Volume) pushLocked(ctx context.Context) (PushResult, error) {
	v.mu.Lock()
	vid, st := v.vid, v.state
	v.mu.Unlock()
	if st.Status == StatusRejectedCommit || st.Status == StatusConflict {
		return PushResult{Snapshot: v.Snapshot()}, fmt.Errorf("push %s: %w: volume is %s (Reset, Replay or Fork)", vid, ErrRejected, st.Status)
	}
	rpc, err := v.rt.client()
	if err != nil {
		return PushResult{Snapshot: v.Snapshot()}, fmt.Errorf("push %s: %w", vid, err)
	}
	resent := st.Push != nil
	pp := st.Push
	var pages []volume.PageWrite
	if pp == nil {
		if st.LocalLSN == st.SyncedLocal {
			return PushResult{Snapshot: v.Snapshot(), RemoteLSN: st.RemoteLSN}, nil
		}
		pp = &pendingPush{Base: st.RemoteLSN, UpTo: st.LocalLSN, PageCount: st.PageCount}
		err := v.rt.store.View(func(tx store.Tx) error {
			for lsn := st.SyncedLocal + 1; lsn <= st.LocalLSN; lsn++ {
				b := tx.Get(store.Commits, commitKey(vid, lsn))
				if b == nil {
					return fmt.Errorf("%w: local commit %d missing", store.ErrCorrupt, lsn)
				}
				_, g, err := decodeCommit(b)
				if err != nil {
					return err
				}
				pp.Graft.Union(g)
			}
			return nil
		})
		if err != nil {
			return PushResult{}, fmt.Errorf("push %s: %w", vid, err)
		}
		if pages, err = v.pushPages(vid, pp); err != nil {
			return PushResult{}, err
		}
		pp.Hash = volume.CommitHash(vid, pp.Base+1, pp.PageCount, pages)
		// Record the push before sending it.
		v.mu.Lock()
		nst := v.state
		nst.Push, nst.Status = pp, StatusInterruptedPush
		err = v.rt.store.Update(func(tx store.Tx) error { return putState(tx, vid, nst) })
		if err == nil {
			v.state = nst
		}
		v.mu.Unlock()
		if err != nil {
			return PushResult{}, fmt.Errorf("push %s: record: %w", vid, err)
		}
	} else {
		if pages, err = v.pushPages(vid, pp); err != nil {
			return PushResult{}, err
		}
		if h := volume.CommitHash(vid, pp.Base+1, pp.PageCount, pages); h != pp.Hash {
			return PushResult{}, fmt.Errorf("push %s: %w: recorded push hash %s, pages hash %s", vid, store.ErrCorrupt, pp.Hash, h)
		}
	}
	snap, err := rpc.Commit(ctx, vid, pp.Base, pp.PageCount, pages)
	if err != nil {
		invalid := connect.CodeOf(err) == connect.CodeInvalidArgument
		if !errors.Is(err, ErrConflict) && !invalid {
			return PushResult{Snapshot: v.Snapshot()}, fmt.Errorf("push %s on remote LSN %d (outcome unknown, recorded; Push resends it): %w", vid, pp.Base, err)
		}
		// Not committed: a stale base, or a commit the cluster refuses
		// whatever the base (too many pages); identical resends of an
		// earlier attempt were refused the same way.
		status := StatusRejectedCommit
		if invalid {
			status = StatusOk
		}
		v.mu.Lock()
		nst := v.state
		nst.Push, nst.Status = nil, status
		serr := v.rt.store.Update(func(tx store.Tx) error { return putState(tx, vid, nst) })
		if serr == nil {
			v.state = nst
		}
		out := v.snapshotLocked()
		v.mu.Unlock()
		if serr != nil {
			return PushResult{}, fmt.Errorf("push %s: record rejection: %w", vid, serr)
		}
		if invalid {
			return PushResult{Snapshot: out}, fmt.Errorf("push %s on remote LSN %d: %d pages refused (local commits kept): %w", vid, pp.Base, len(pages), err)
		}
		return PushResult{Snapshot: out}, fmt.Errorf("push %s on remote LSN %d: %w: %w", vid, pp.Base, ErrRejected, err)
	}
	if snap.LSN != pp.Base+1 {
		return PushResult{}, fmt.Errorf("push %s on remote LSN %d: cluster acknowledged LSN %d", vid, pp.Base, snap.LSN)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	nst := v.state
	nst.Push, nst.Status = nil, StatusOk
	nst.SyncedLocal, nst.RemoteLSN = pp.UpTo, snap.LSN
	err = v.rt.store.Update(func(tx store.Tx) error {
		for lsn := st.SyncedLocal + 1; lsn <= pp.UpTo; lsn++ {
			if err := tx.Delete(store.Commits, commitKey(vid, lsn)); err != nil {
				return err
			}
		}
		return putState(tx, vid, nst)
	})
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: record ack %d: %w", vid, snap.LSN, err)
	}
	v.state = nst
	return PushResult{Pushed: true, Resent: resent, RemoteLSN: snap.LSN, Pages: len(pages), Hash: pp.Hash, Snapshot: v.snapshotLocked()}, nil
}

// pushPages reads the pages of pp's graft at local LSN pp.UpTo.
func (v *Volume) pushPages(vid volume.ID, pp *pendingPush) ([]volume.PageWrite, error) {
	var pages []volume.PageWrite
	at := Snapshot{VID: vid, LocalLSN: pp.UpTo}
	err := v.rt.store.View(func(tx store.Tx) error {
		for idx := range pp.Graft.All() {
			tag, data, _, found, err := v.lookup(tx, at, idx)
			if err != nil {
				return err
			}
			if !found || tag == tagPending {
				return fmt.Errorf("%w: page %d of local commit <= %d has no local bytes", store.ErrCorrupt, idx, pp.UpTo)
			}
			if data == nil {
				data = volume.ZeroPage()
			}
			pages = append(pages, volume.PageWrite{Idx: idx, Data: data})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push %s: read pages: %w", vid, err)
	}
	return pages, nil
}

// Pull fast-forwards the replica to the remote head by graft: the pages
// changed remotely become pending (no page data moves). A recorded push of
// unknown outcome is resent first. With local commits not pushed and a
// remote head that moved, the volume becomes StatusConflict (ErrDiverged).
func (v *Volume) Pull(ctx context.Context) error {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	return v.pullLocked(ctx)
}

func (v *Volume) pullLocked(ctx context.Context) error {
	v.mu.Lock()
	vid, st := v.vid, v.state
	v.mu.Unlock()
	if st.Push != nil {
		if _, err := v.pushLocked(ctx); err != nil {
			return fmt.Errorf("pull %s: resolve recorded push: %w", vid, err)
		}
	}
	if st.Status == StatusRejectedCommit || st.Status == StatusConflict {
		return fmt.Errorf("pull %s: %w: volume is %s (Reset, Replay or Fork)", vid, ErrRejected, st.Status)
	}
	return v.advance(ctx, false)
}

// advance adopts the remote head. With reset false it is a pull (fails on
// local commits); with reset true it drops the local commits, and their
// pages become pending too.
func (v *Volume) advance(ctx context.Context, reset bool) error {
	rpc, err := v.rt.client()
	v.mu.Lock()
	vid, st := v.vid, v.state
	v.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pull %s: %w", vid, err)
	}
	snap, g, err := rpc.PullGraft(ctx, vid, st.RemoteLSN, 0, ReadOptions{})
	if err != nil {
		return fmt.Errorf("pull %s since remote LSN %d from %v: %w", vid, st.RemoteLSN, rpc.Endpoints(), err)
	}
	if snap.LSN < st.RemoteLSN {
		return fmt.Errorf("pull %s: remote head %d is behind the replica's remote LSN %d", vid, snap.LSN, st.RemoteLSN)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st = v.state
	if v.vid != vid || st.Push != nil {
		return fmt.Errorf("pull %s: %w: volume changed during the pull", vid, ErrConcurrentWrite)
	}
	local := st.LocalLSN > st.SyncedLocal
	if !reset {
		if snap.LSN == st.RemoteLSN {
			return nil
		}
		if local {
			nst := st
			nst.Status = StatusConflict
			if err := v.rt.store.Update(func(tx store.Tx) error { return putState(tx, vid, nst) }); err != nil {
				return fmt.Errorf("pull %s: record conflict: %w", vid, err)
			}
			v.state = nst
			return fmt.Errorf("pull %s: %w: remote head %d, local commits since remote LSN %d", vid, ErrDiverged, snap.LSN, st.RemoteLSN)
		}
	} else if snap.LSN == st.RemoteLSN && !local && st.Status == StatusOk {
		return nil
	}
	nst := st
	nst.LocalLSN++
	nst.SyncedLocal, nst.RemoteLSN, nst.PageCount, nst.Status = nst.LocalLSN, snap.LSN, snap.PageCount, StatusOk
	err = v.rt.store.Update(func(tx store.Tx) error {
		for lsn := st.SyncedLocal + 1; lsn <= st.LocalLSN; lsn++ {
			k := commitKey(vid, lsn)
			b := tx.Get(store.Commits, k)
			if b == nil {
				return fmt.Errorf("%w: local commit %d missing", store.ErrCorrupt, lsn)
			}
			_, lg, err := decodeCommit(b)
			if err != nil {
				return err
			}
			g.Union(lg)
			if err := tx.Delete(store.Commits, k); err != nil {
				return err
			}
		}
		for idx := range g.All() {
			if err := tx.Put(store.Pages, pageKey(vid, idx, nst.LocalLSN), []byte{tagPending}); err != nil {
				return err
			}
		}
		return putState(tx, vid, nst)
	})
	if err != nil {
		return fmt.Errorf("pull %s to remote LSN %d: %w", vid, snap.LSN, err)
	}
	v.state = nst
	return nil
}

// Sync pushes the local commits, then pulls.
func (v *Volume) Sync(ctx context.Context) error {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	if _, err := v.pushLocked(ctx); err != nil {
		return err
	}
	return v.pullLocked(ctx)
}

// Reset drops the local commits not pushed and adopts the remote head
// (StatusOk). A recorded push of unknown outcome is resolved first: if it
// had committed, its commit stays (it is remote).
func (v *Volume) Reset(ctx context.Context) error {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	return v.resetLocked(ctx)
}

func (v *Volume) resetLocked(ctx context.Context) error {
	v.mu.Lock()
	pending := v.state.Push != nil
	v.mu.Unlock()
	if pending {
		if _, err := v.pushLocked(ctx); err != nil && !errors.Is(err, ErrRejected) {
			return fmt.Errorf("reset: resolve recorded push: %w", err)
		}
	}
	return v.advance(ctx, true)
}

// Replay resets the volume to the remote head, runs change on a Writer
// there, commits and pushes; it retries (up to 3 times) when the push is
// rejected again.
func (v *Volume) Replay(ctx context.Context, change func(w *Writer) error) error {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	var err error
	for range 3 {
		if err = v.resetLocked(ctx); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		w := v.Writer()
		if err = change(w); err != nil {
			return fmt.Errorf("replay: change: %w", err)
		}
		if _, err = w.Commit(ctx); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if _, err = v.pushLocked(ctx); err == nil || !errors.Is(err, ErrRejected) {
			return err
		}
	}
	return fmt.Errorf("replay: %w", err)
}

// forkBatch is the most pages Fork sends in one remote commit (the
// cluster's default per-commit cap).
const forkBatch = 256

// Fork copies the latest local snapshot (fetching its pending pages) into
// a new volume on the cluster, and switches v to it: v.VID() and the
// Runtime's Volume map then name the new volume, synced at its head. The
// old volume's local state stays in the store as it was.
func (v *Volume) Fork(ctx context.Context) (volume.ID, error) {
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	rpc, err := v.rt.client()
	if err != nil {
		return volume.ID{}, fmt.Errorf("fork: %w", err)
	}
	snap := v.Snapshot()
	var idxs []volume.PageIdx
	err = v.rt.store.View(func(tx store.Tx) error {
		var last volume.PageIdx
		return tx.Scan(store.Pages, snap.VID[:], func(k, _ []byte) error {
			idx, _, err := parsePageKey(k)
			if err == nil && idx != last {
				idxs, last = append(idxs, idx), idx
			}
			return err
		})
	})
	if err != nil {
		return volume.ID{}, fmt.Errorf("fork %s: %w", snap.VID, err)
	}
	var pages []volume.PageWrite
	for _, idx := range idxs {
		data, err := v.readAt(ctx, snap, idx)
		if err != nil {
			return volume.ID{}, fmt.Errorf("fork %s: %w", snap.VID, err)
		}
		if !volume.IsZeroPage(data) {
			pages = append(pages, volume.PageWrite{Idx: idx, Data: data})
		}
	}
	nvid, err := volume.NewID(time.Now(), rand.Reader)
	if err != nil {
		return volume.ID{}, fmt.Errorf("fork: new volume id: %w", err)
	}
	var remote volume.LSN
	for start := 0; start < len(pages) || remote == 0; start += forkBatch {
		batch := pages[start:min(start+forkBatch, len(pages))]
		s, err := rpc.Commit(ctx, nvid, remote, snap.PageCount, batch)
		if err != nil {
			return volume.ID{}, fmt.Errorf("fork %s into %s: commit on %d: %w", snap.VID, nvid, remote, err)
		}
		remote = s.LSN
	}
	nst := volState{LocalLSN: 1, SyncedLocal: 1, RemoteLSN: remote, PageCount: snap.PageCount}
	err = v.rt.store.Update(func(tx store.Tx) error {
		for _, p := range pages {
			if err := tx.Put(store.Pages, pageKey(nvid, p.Idx, 1), pageValue(p.Data)); err != nil {
				return err
			}
		}
		return putState(tx, nvid, nst)
	})
	if err != nil {
		return volume.ID{}, fmt.Errorf("fork %s into %s: %w", snap.VID, nvid, err)
	}
	v.mu.Lock()
	old := v.vid
	v.vid, v.state = nvid, nst
	v.mu.Unlock()
	v.rt.rename(v, old, nvid)
	return nvid, nil
}
