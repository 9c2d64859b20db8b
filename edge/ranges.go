package edge

import (
	"context"
	"fmt"
	"sync"

	"github.com/maypok86/otter/v2"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/volume"
)

// rangeKind tells the answers of the range cache apart.
type rangeKind uint8

const (
	rangeGraft rangeKind = iota + 1
	rangeCommits
)

// rangeKey names the answer about the fixed LSN range (since, until] of
// vid: its graft, or its commit metadata cut at limit (0: the cluster's
// default). until is a snapshot the edge knows exists, so the answer never
// changes.
type rangeKey struct {
	vid   volume.ID
	since volume.LSN
	until volume.LSN
	limit uint32
	kind  rangeKind
}

// rangeVal is a checked upstream answer; it is shared and never modified.
type rangeVal struct {
	graft   *graftv1.PullGraftResponse
	set     volume.PageSet // the graft, decoded
	commits *graftv1.PullCommitsResponse
}

// rangeEntryOverhead is the per-entry weight besides the answer's bytes:
// key, value, messages and otter's node (an estimate).
const rangeEntryOverhead = 256

func rangeWeight(_ rangeKey, v rangeVal) uint32 {
	n := rangeEntryOverhead
	if v.graft != nil {
		n += 2*len(v.graft.GetGraft()) + 4*len(v.graft.GetChanged()) // bytes + decoded set
	}
	if v.commits != nil {
		for _, c := range v.commits.GetCommits() {
			n += 96 + len(c.GetHash()) + len(c.GetGraft())
		}
	}
	return uint32(n)
}

// recentKeep is how many resolved snapshots per volume the edge remembers
// as starting points for resolving a later snapshot through a graft.
const recentKeep = 8

// recentSnaps lists the newest snapshots of one volume whose resolutions
// the edge has loaded, ascending.
type recentSnaps struct {
	mu   sync.Mutex
	lsns []volume.LSN
}

func (r *recentSnaps) add(lsn volume.LSN) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := len(r.lsns)
	for i > 0 && r.lsns[i-1] >= lsn {
		if r.lsns[i-1] == lsn {
			return
		}
		i--
	}
	if i == 0 && len(r.lsns) == recentKeep {
		return // older than all kept
	}
	r.lsns = append(r.lsns, 0)
	copy(r.lsns[i+1:], r.lsns[i:])
	r.lsns[i] = lsn
	if len(r.lsns) > recentKeep {
		r.lsns = r.lsns[1:]
	}
}

// below returns the kept snapshots below lsn, newest first.
func (r *recentSnaps) below(lsn volume.LSN) []volume.LSN {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []volume.LSN
	for i := len(r.lsns) - 1; i >= 0; i-- {
		if r.lsns[i] < lsn {
			out = append(out, r.lsns[i])
		}
	}
	return out
}

// noteHead records that snapshot lsn of vid exists (the cluster answered
// about it): ranges ending at or below it are immutable.
func (e *Edge) noteHead(vid volume.ID, lsn volume.LSN) {
	if lsn == 0 {
		return
	}
	e.heads.Compute(vid, func(old volume.LSN, found bool) (volume.LSN, otter.ComputeOp) {
		if found && old >= lsn {
			return old, otter.CancelOp
		}
		return lsn, otter.WriteOp
	})
}

// exists reports whether the edge knows snapshot lsn (> 0) of vid exists:
// it saw a head at or past it, or holds the snapshot's page count (which
// only an answer about lsn itself writes).
func (e *Edge) exists(vid volume.ID, lsn volume.LSN) bool {
	if lsn == 0 {
		return false
	}
	if h, ok := e.heads.GetIfPresent(vid); ok && lsn <= h {
		return true
	}
	_, ok := e.meta.GetIfPresent(metaKey{vid: vid, lsn: lsn})
	return ok
}

// rememberResolved records that the resolutions of snapshot lsn of vid
// were loaded, so a later snapshot may start from them.
func (e *Edge) rememberResolved(vid volume.ID, lsn volume.LSN) {
	r, _ := e.recent.ComputeIfAbsent(vid, func() (*recentSnaps, bool) { return &recentSnaps{}, false })
	if r != nil {
		r.add(lsn)
	}
}

// graftOf returns the graft of (since, until] of vid, until a snapshot the
// edge knows exists: from the range cache, else from ONE upstream
// PullGraft (no page data) at at_least_lsn until, checked and cached.
// hit reports a cache hit.
func (e *Edge) graftOf(ctx context.Context, vid volume.ID, since, until volume.LSN) (v rangeVal, hit bool, err error) {
	key := rangeKey{vid: vid, since: since, until: until, kind: rangeGraft}
	if v, ok := e.ranges.GetIfPresent(key); ok {
		e.metrics.ranges.WithLabelValues("PullGraft", sourceCache).Inc()
		return v, true, nil
	}
	v, err = e.ranges.Get(ctx, key, otter.LoaderFunc[rangeKey, rangeVal](func(ctx context.Context, k rangeKey) (rangeVal, error) {
		req := &graftv1.PullGraftRequest{Vid: vid.String(), SinceLsn: uint64(since), UntilLsn: uint64(until),
			Consistency: graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN, MinLsn: uint64(until)}
		resp, err := callUpstream(ctx, e, false, req, volumeClient.PullGraft)
		if err != nil {
			return rangeVal{}, err
		}
		set, err := checkGraft(vid, since, until, resp)
		if err != nil {
			e.log.Error("malformed upstream PullGraft answer; not cached", "vid", vid, "since", since, "until", until, "err", err)
			return rangeVal{}, err
		}
		e.metrics.ranges.WithLabelValues("PullGraft", sourceUpstream).Inc()
		return rangeVal{graft: resp, set: set}, nil
	}))
	return v, false, err
}

// commitsOf returns the commit metadata of (since, until] of vid cut at
// limit, until a snapshot the edge knows exists: cached, else one upstream
// PullCommits at at_least_lsn until, checked and cached.
func (e *Edge) commitsOf(ctx context.Context, vid volume.ID, since, until volume.LSN, limit uint32) (rangeVal, error) {
	key := rangeKey{vid: vid, since: since, until: until, limit: limit, kind: rangeCommits}
	if v, ok := e.ranges.GetIfPresent(key); ok {
		e.metrics.ranges.WithLabelValues("PullCommits", sourceCache).Inc()
		return v, nil
	}
	return e.ranges.Get(ctx, key, otter.LoaderFunc[rangeKey, rangeVal](func(ctx context.Context, k rangeKey) (rangeVal, error) {
		req := &graftv1.PullCommitsRequest{Vid: vid.String(), SinceLsn: uint64(since), UntilLsn: uint64(until), Limit: limit,
			Consistency: graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN, MinLsn: uint64(until)}
		resp, err := callUpstream(ctx, e, false, req, volumeClient.PullCommits)
		if err != nil {
			return rangeVal{}, err
		}
		if err := checkCommits(vid, since, until, limit, resp); err != nil {
			e.log.Error("malformed upstream PullCommits answer; not cached", "vid", vid, "since", since, "until", until, "err", err)
			return rangeVal{}, err
		}
		e.metrics.ranges.WithLabelValues("PullCommits", sourceUpstream).Inc()
		return rangeVal{commits: resp}, nil
	}))
}

// checkSnapshotAt checks that s is snapshot until of vid.
func checkSnapshotAt(vid volume.ID, until volume.LSN, s *graftv1.Snapshot) (volume.Snapshot, error) {
	snap, err := snapshotFrom(s)
	if err != nil {
		return volume.Snapshot{}, err
	}
	if snap.VID != vid || snap.LSN != until {
		return volume.Snapshot{}, fmt.Errorf("%w: asked for the range up to %s@%d, got snapshot %s@%d", ErrBadUpstream, vid, until, snap.VID, snap.LSN)
	}
	return snap, nil
}

// checkGraft verifies a PullGraft answer about (since, until] of vid and
// returns its decoded graft.
func checkGraft(vid volume.ID, since, until volume.LSN, m *graftv1.PullGraftResponse) (volume.PageSet, error) {
	if _, err := checkSnapshotAt(vid, until, m.GetSnapshot()); err != nil {
		return volume.PageSet{}, err
	}
	set, err := volume.DecodePageSet(m.GetGraft())
	if err != nil {
		return volume.PageSet{}, fmt.Errorf("%w: graft: %w", ErrBadUpstream, err)
	}
	if since == until && !set.IsEmpty() {
		return volume.PageSet{}, fmt.Errorf("%w: the empty range (%d, %d] has a non-empty graft", ErrBadUpstream, since, until)
	}
	if set.Contains(0) {
		return volume.PageSet{}, fmt.Errorf("%w: graft holds page 0", ErrBadUpstream)
	}
	if ch := m.GetChanged(); len(ch) > 0 {
		if len(ch) != set.Len() {
			return volume.PageSet{}, fmt.Errorf("%w: changed lists %d pages, the graft %d", ErrBadUpstream, len(ch), set.Len())
		}
		for _, idx := range ch {
			if !set.Contains(volume.PageIdx(idx)) {
				return volume.PageSet{}, fmt.Errorf("%w: changed page %d is not in the graft", ErrBadUpstream, idx)
			}
		}
	}
	return set, nil
}

// checkCommits verifies a PullCommits answer about (since, until] of vid
// cut at limit: the commits since+1, since+2, ... in order, all of them
// unless more is set, each with a 32-byte hash and a decodable graft.
func checkCommits(vid volume.ID, since, until volume.LSN, limit uint32, m *graftv1.PullCommitsResponse) error {
	snap, err := checkSnapshotAt(vid, until, m.GetSnapshot())
	if err != nil {
		return err
	}
	cs := m.GetCommits()
	n := uint64(until - since)
	switch {
	case uint64(len(cs)) > n:
		return fmt.Errorf("%w: %d commits in a range of %d", ErrBadUpstream, len(cs), n)
	case !m.GetMore() && uint64(len(cs)) != n:
		return fmt.Errorf("%w: %d commits in a range of %d, and no more", ErrBadUpstream, len(cs), n)
	case m.GetMore() && uint64(len(cs)) == n:
		return fmt.Errorf("%w: the whole range of %d commits, and more", ErrBadUpstream, n)
	case limit > 0 && len(cs) > int(limit):
		return fmt.Errorf("%w: %d commits past the limit %d", ErrBadUpstream, len(cs), limit)
	}
	for i, c := range cs {
		if want := uint64(since) + uint64(i) + 1; c.GetLsn() != want {
			return fmt.Errorf("%w: commits[%d] is lsn %d, want %d", ErrBadUpstream, i, c.GetLsn(), want)
		}
		if _, err := volume.HashFromBytes(c.GetHash()); err != nil {
			return fmt.Errorf("%w: commit %d hash: %w", ErrBadUpstream, c.GetLsn(), err)
		}
		if _, err := volume.DecodePageSet(c.GetGraft()); err != nil {
			return fmt.Errorf("%w: commit %d graft: %w", ErrBadUpstream, c.GetLsn(), err)
		}
	}
	if len(cs) > 0 && !m.GetMore() && cs[len(cs)-1].GetPageCount() != snap.PageCount {
		return fmt.Errorf("%w: commit %d has page count %d, its snapshot %d", ErrBadUpstream, until, cs[len(cs)-1].GetPageCount(), snap.PageCount)
	}
	return nil
}

// resolveByGraft resolves pages want of snapshot lsn of vid without
// reading them, from an older snapshot l1 whose resolutions are cached and
// the graft of (l1, lsn] (cached, or ONE PullGraft: no page data). Page i
// not in the graft was last written at or before l1, so its version at lsn
// is its version at l1 — when that version is the last write (a version
// > 0, or 0 with i within l1's page count: never written), and masked to 0
// when i is beyond lsn's page count. Only a snapshot the edge knows exists
// is resolved this way. It returns the versions found and lsn's page count,
// and ok false when it resolved nothing (then nothing was learnt).
func (e *Edge) resolveByGraft(ctx context.Context, vid volume.ID, lsn volume.LSN, want []volume.PageIdx) (map[volume.PageIdx]volume.LSN, uint32, bool) {
	if len(want) == 0 || !e.exists(vid, lsn) {
		return nil, 0, false
	}
	r, ok := e.recent.GetIfPresent(vid)
	if !ok {
		return nil, 0, false
	}
	// The kept snapshot below lsn that resolves most of want (the newest
	// on a tie: the smallest graft).
	var l1 volume.LSN
	var pc1 uint64
	best := 0
	for _, l := range r.below(lsn) {
		pc, ok := e.meta.GetIfPresent(metaKey{vid: vid, lsn: l})
		if !ok {
			continue
		}
		n := 0
		for _, idx := range want {
			if v, ok := e.meta.GetIfPresent(metaKey{vid: vid, lsn: l, idx: idx}); ok && (v != 0 || uint64(idx) <= pc) {
				n++
			}
		}
		if n > best {
			l1, pc1, best = l, pc, n
		}
	}
	if best == 0 {
		return nil, 0, false
	}
	g, _, err := e.graftOf(ctx, vid, l1, lsn)
	if err != nil {
		e.log.Debug("graft for resolution failed; reading the pages", "vid", vid, "since", l1, "until", lsn, "err", err)
		return nil, 0, false
	}
	pc2 := g.graft.GetSnapshot().GetPageCount()
	out := make(map[volume.PageIdx]volume.LSN, best)
	for _, idx := range want {
		v, ok := e.meta.GetIfPresent(metaKey{vid: vid, lsn: l1, idx: idx})
		if !ok || (v == 0 && uint64(idx) > pc1) || g.set.Contains(idx) {
			continue
		}
		ver := volume.LSN(v)
		if uint32(idx) > pc2 {
			ver = 0
		}
		out[idx] = ver
	}
	if len(out) == 0 {
		return nil, 0, false
	}
	e.metrics.graftResolved.Add(float64(len(out)))
	return out, pc2, true
}
