package fsm

import (
	"context"
	"fmt"
	"sort"

	"github.com/graft-cluster/graft/volume"
)

// CommitInfo is one buffered commit's metadata.
type CommitInfo struct {
	LSN        volume.LSN
	PageCount  uint32
	Hash       volume.Hash
	TimeUnixMs int64
	Graft      volume.PageSet
}

// PageVersion is a page as visible at some snapshot. LSN 0 means the page
// was never written (Data is all zeros).
type PageVersion struct {
	Idx  volume.PageIdx
	LSN  volume.LSN
	Data []byte
}

// Applied returns the Raft index of the last applied entry.
func (f *FSM) Applied() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.applied
}

// BufferBytes returns the page bytes buffered across all volumes.
func (f *FSM) BufferBytes() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.bufferBytes
}

// Volumes returns the number of volumes with at least one commit.
func (f *FSM) Volumes() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.st.volumes)
}

// Nodes returns a copy of the node directory.
func (f *FSM) Nodes() map[string]NodeInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]NodeInfo, len(f.st.nodes))
	for k, v := range f.st.nodes {
		out[k] = v
	}
	return out
}

// Head returns the volume's head snapshot; LSN 0 for a volume never
// committed to.
func (f *FSM) Head(vid volume.ID) volume.Snapshot {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.head(vid)
}

func (s *state) head(vid volume.ID) volume.Snapshot {
	if v := s.volumes[vid]; v != nil {
		return v.head
	}
	return volume.Snapshot{VID: vid}
}

// Changed returns a channel that is closed at the next state change.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// WaitApplied blocks until the applied index reaches index or ctx ends.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	return f.wait(ctx, func(s *state) bool { return s.applied >= index })
}

// WaitLSN blocks until the volume's head reaches lsn or ctx ends, and
// returns the head it saw.
func (f *FSM) WaitLSN(ctx context.Context, vid volume.ID, lsn volume.LSN) (volume.Snapshot, error) {
	var head volume.Snapshot
	err := f.wait(ctx, func(s *state) bool {
		head = s.head(vid)
		return head.LSN >= lsn
	})
	return head, err
}

func (f *FSM) wait(ctx context.Context, done func(*state) bool) error {
	for {
		f.mu.RLock()
		ok := done(f.st)
		ch := f.changed
		f.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resolve turns lsn (0: head) into a snapshot of the volume.
func (s *state) resolve(vid volume.ID, lsn volume.LSN) (*volState, volume.Snapshot, error) {
	if _, ok := s.deleted[vid]; ok {
		return nil, volume.Snapshot{}, fmt.Errorf("%w: %s", ErrVolumeDeleted, vid)
	}
	v := s.volumes[vid]
	if q, ok := s.quarantine[vid]; ok && v == nil {
		// Quarantined before its head was known: nothing can be told.
		return nil, volume.Snapshot{}, &QuarantineError{Quarantine: q}
	}
	head := s.head(vid)
	if lsn == 0 || lsn == head.LSN {
		return v, head, nil
	}
	if lsn > head.LSN {
		return nil, volume.Snapshot{}, fmt.Errorf("%w: lsn %d, head %d", ErrFutureLSN, lsn, head.LSN)
	}
	rec := v.commit(lsn)
	if rec == nil {
		return nil, volume.Snapshot{}, fmt.Errorf("%w: lsn %d, buffer starts at %d", ErrNotBuffered, lsn, v.first)
	}
	return v, volume.Snapshot{VID: vid, LSN: lsn, PageCount: rec.pageCount}, nil
}

// SnapshotAt returns the volume's snapshot at lsn (0: the head).
func (f *FSM) SnapshotAt(vid volume.ID, lsn volume.LSN) (volume.Snapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, snap, err := f.st.resolve(vid, lsn)
	return snap, err
}

// PageRead is the answer of ReadPages.
type PageRead struct {
	// Snapshot is the snapshot the pages belong to.
	Snapshot volume.Snapshot
	// Pages are the requested pages, in request order.
	Pages []PageVersion
	// Missing are the positions in Pages whose visible version predates
	// the buffer: read them from the object store at Snapshot.LSN (using
	// History). Their PageVersion holds only Idx.
	Missing []int
	// History is the volume's flushed history, set when Missing is not
	// empty.
	History History
}

// ReadPages returns the pages as visible at lsn (0: the head). A page never
// written, or beyond the snapshot's page count, reads as zeros with LSN 0.
// Data slices are shared and must not be modified. An lsn below the buffer
// returns ErrNotBuffered: the whole snapshot is in the object store.
func (f *FSM) ReadPages(vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx) (PageRead, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, snap, err := f.st.resolve(vid, lsn)
	if err != nil {
		return PageRead{}, err
	}
	r := PageRead{Snapshot: snap, Pages: make([]PageVersion, len(idxs))}
	for i, idx := range idxs {
		r.Pages[i] = PageVersion{Idx: idx}
		if v == nil || uint64(idx) > uint64(snap.PageCount) {
			continue
		}
		vers := v.pages[idx]
		// Last version with lsn <= snap.LSN.
		j := sort.Search(len(vers), func(j int) bool { return vers[j].lsn > snap.LSN })
		if j > 0 {
			r.Pages[i].LSN, r.Pages[i].Data = vers[j-1].lsn, vers[j-1].data
		} else if v.first > 1 {
			r.Missing = append(r.Missing, i)
		}
	}
	if len(r.Missing) > 0 {
		r.History = f.st.history(vid)
	}
	return r, nil
}

// Graft returns the union of pages changed in (since, until] (until 0: the
// head) and the snapshot at until.
func (f *FSM) Graft(vid volume.ID, since, until volume.LSN) (volume.Snapshot, volume.PageSet, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, snap, err := f.st.resolve(vid, until)
	if err != nil {
		return volume.Snapshot{}, volume.PageSet{}, err
	}
	var set volume.PageSet
	if v == nil || since >= snap.LSN {
		return snap, set, nil
	}
	if since+1 < v.first {
		return volume.Snapshot{}, volume.PageSet{}, fmt.Errorf("%w: since %d, buffer starts at %d", ErrNotBuffered, since, v.first)
	}
	for lsn := since + 1; lsn <= snap.LSN; lsn++ {
		set.Union(v.commit(lsn).graft)
	}
	return snap, set, nil
}

// Commits returns metadata of up to limit commits in (since, until] (until
// 0: the head), the snapshot at until, and whether limit cut it short.
func (f *FSM) Commits(vid volume.ID, since, until volume.LSN, limit int) (volume.Snapshot, []CommitInfo, bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, snap, err := f.st.resolve(vid, until)
	if err != nil {
		return volume.Snapshot{}, nil, false, err
	}
	if v == nil || since >= snap.LSN {
		return snap, nil, false, nil
	}
	if since+1 < v.first {
		return volume.Snapshot{}, nil, false, fmt.Errorf("%w: since %d, buffer starts at %d", ErrNotBuffered, since, v.first)
	}
	var out []CommitInfo
	for lsn := since + 1; lsn <= snap.LSN; lsn++ {
		if limit > 0 && len(out) == limit {
			return snap, out, true, nil
		}
		rec := v.commit(lsn)
		out = append(out, CommitInfo{LSN: rec.lsn, PageCount: rec.pageCount, Hash: rec.hash, TimeUnixMs: rec.timeUnixMs, Graft: rec.graft})
	}
	return snap, out, false, nil
}

// CommitAt returns the page count and hash of the buffered commit at lsn.
func (f *FSM) CommitAt(vid volume.ID, lsn volume.LSN) (uint32, volume.Hash, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v := f.st.volumes[vid]
	if v == nil {
		return 0, volume.Hash{}, false
	}
	rec := v.commit(lsn)
	if rec == nil {
		return 0, volume.Hash{}, false
	}
	return rec.pageCount, rec.hash, true
}

// Node returns one node-directory entry.
func (f *FSM) Node(id string) (NodeInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.st.nodes[id]
	return n, ok
}
