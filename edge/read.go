package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"connectrpc.com/connect"
	"github.com/maypok86/otter/v2"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

// readOpts is the consistency a fetch asks the cluster for.
type readOpts struct {
	cons   graftv1.Consistency
	minLSN uint64
}

// atLSN is what a read of a snapshot the edge already knows exists asks
// for: any node that has applied it may answer.
func atLSN(lsn volume.LSN) readOpts {
	return readOpts{cons: graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN, minLSN: uint64(lsn)}
}

// same reports whether a read with o asks the cluster exactly what a read
// with ro does (unset consistency is linearizable; min_lsn only counts for
// at_least_lsn).
func (o readOpts) same(ro readOpts) bool {
	norm := func(r readOpts) readOpts {
		if r.cons == graftv1.Consistency_CONSISTENCY_UNSPECIFIED {
			r.cons = graftv1.Consistency_CONSISTENCY_LINEARIZABLE
		}
		if r.cons != graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN {
			r.minLSN = 0
		}
		return r
	}
	return norm(o) == norm(ro)
}

// loadError is the failure of a fetch made by a cache load, with what the
// fetch asked for. Loads are shared: requests for the same keys join the
// load in flight, whatever consistency (or, for page bytes, snapshot) they
// asked for, and get its error if it fails. That error only answers a
// joiner that asked the same: a stale read of a snapshot the answering
// node has not applied yet fails with out_of_range, which must not become
// the answer of a linearizable read of a snapshot that exists.
type loadError struct {
	lsn volume.LSN
	ro  readOpts
	err error
}

func (l *loadError) Error() string { return l.err.Error() }
func (l *loadError) Unwrap() error { return l.err }

// foreignFailure reports whether err holds the failure of a load that
// asked for something else than a read of lsn with ro.
func foreignFailure(err error, lsn volume.LSN, ro readOpts) bool {
	switch x := err.(type) {
	case *loadError:
		return x.lsn != lsn || !x.ro.same(ro)
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if foreignFailure(e, lsn, ro) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return foreignFailure(x.Unwrap(), lsn, ro)
	}
	return false
}

// fetched is a page this request fetched itself, and where from.
type fetched struct {
	pv     pageVersion
	source string
}

// fetch reads pages idxs of snapshot lsn (lsn > 0): from the object store
// when its view of the volume covers lsn, else (or when that fails) from
// the cluster. The answer is checked against the request before anyone
// sees it.
func (e *Edge) fetch(ctx context.Context, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx, ro readOpts) (volume.Snapshot, []pageVersion, string, error) {
	if e.bucket != nil {
		if v := e.bucket.view(e.ctx, vid, lsn); v != nil {
			snap, pages, err := v.read(ctx, lsn, idxs)
			if err == nil {
				err = checkRead(vid, lsn, idxs, snap, pages)
			}
			if err == nil {
				e.noteHead(vid, lsn)
				e.metrics.bucketBytes.Add(float64(pageBytes(pages)))
				return snap, pages, sourceBucket, nil
			}
			if ctx.Err() != nil {
				return volume.Snapshot{}, nil, "", err
			}
			if errors.Is(err, fsm.ErrRetention) {
				// Retention deleted what lsn needs: the cluster's own
				// answer (out_of_range naming the oldest readable lsn),
				// without asking it.
				return volume.Snapshot{}, nil, "", connect.NewError(connect.CodeOutOfRange, err)
			}
			e.metrics.bucketErrors.Inc()
			e.log.Warn("object-store read failed; reading from the cluster", "vid", vid, "lsn", lsn, "err", err)
		}
	}
	req := &graftv1.ReadPagesRequest{Vid: vid.String(), Lsn: uint64(lsn), Consistency: ro.cons, MinLsn: ro.minLSN, Pages: make([]uint32, len(idxs))}
	for i, idx := range idxs {
		req.Pages[i] = uint32(idx)
	}
	resp, err := callUpstream(ctx, e, false, req, volumeClient.ReadPages)
	if err != nil {
		return volume.Snapshot{}, nil, "", err
	}
	snap, pages, err := fromReadResponse(resp)
	if err == nil {
		err = checkRead(vid, lsn, idxs, snap, pages)
	}
	if err != nil {
		e.log.Error("malformed upstream ReadPages answer; not cached", "vid", vid, "lsn", lsn, "err", err)
		return volume.Snapshot{}, nil, "", err
	}
	e.noteHead(vid, lsn)
	e.metrics.upstreamBytes.Add(float64(pageBytes(pages)))
	return snap, pages, sourceUpstream, nil
}

func pageBytes(pages []pageVersion) int {
	n := 0
	for _, p := range pages {
		n += len(p.data)
	}
	return n
}

func fromReadResponse(m *graftv1.ReadPagesResponse) (volume.Snapshot, []pageVersion, error) {
	s := m.GetSnapshot()
	if s == nil {
		return volume.Snapshot{}, nil, fmt.Errorf("%w: no snapshot", ErrBadUpstream)
	}
	vid, err := volume.ParseID(s.GetVid())
	if err != nil {
		return volume.Snapshot{}, nil, fmt.Errorf("%w: snapshot vid: %w", ErrBadUpstream, err)
	}
	snap := volume.Snapshot{VID: vid, LSN: volume.LSN(s.GetLsn()), PageCount: s.GetPageCount()}
	pages := make([]pageVersion, len(m.GetPages()))
	for i, p := range m.GetPages() {
		pages[i] = pageVersion{idx: volume.PageIdx(p.GetIdx()), ver: volume.LSN(p.GetLsn()), data: p.GetData()}
	}
	return snap, pages, nil
}

var zeroPage = make([]byte, volume.PageSize)

// checkRead verifies that an answer is about snapshot lsn of vid and holds
// exactly the pages asked for, each a version at or below lsn with a full
// page of data; it normalises never-written pages to nil data.
func checkRead(vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx, snap volume.Snapshot, pages []pageVersion) error {
	if snap.VID != vid || snap.LSN != lsn {
		return fmt.Errorf("%w: asked for snapshot %s@%d, got %s@%d", ErrBadUpstream, vid, lsn, snap.VID, snap.LSN)
	}
	if len(pages) != len(idxs) {
		return fmt.Errorf("%w: asked for %d pages, got %d", ErrBadUpstream, len(idxs), len(pages))
	}
	for i := range pages {
		p := &pages[i]
		switch {
		case p.idx != idxs[i]:
			return fmt.Errorf("%w: pages[%d] is page %d, want %d", ErrBadUpstream, i, p.idx, idxs[i])
		case p.ver > lsn:
			return fmt.Errorf("%w: page %d version %d is past the snapshot %d", ErrBadUpstream, p.idx, p.ver, lsn)
		case p.ver != 0 && uint64(p.idx) > uint64(snap.PageCount):
			return fmt.Errorf("%w: page %d has version %d beyond page count %d", ErrBadUpstream, p.idx, p.ver, snap.PageCount)
		case p.ver == 0:
			if p.data != nil && !bytes.Equal(p.data, zeroPage) {
				return fmt.Errorf("%w: never-written page %d has data", ErrBadUpstream, p.idx)
			}
			p.data = nil
		case len(p.data) != volume.PageSize:
			return fmt.Errorf("%w: page %d is %d bytes", ErrBadUpstream, p.idx, len(p.data))
		}
	}
	return nil
}

// readAt returns pages idxs of the fixed snapshot lsn (> 0). It resolves
// each page to its version at lsn through the metadata cache (loading the
// misses of the whole request with one fetch), then takes the bytes of
// each version from the page cache (loading the misses with one more
// fetch at lsn, which can only be needed when a version's bytes were
// evicted, or another request's load filled the resolution).
func (e *Edge) readAt(ctx context.Context, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx, ro readOpts) (volume.Snapshot, []pageVersion, error) {
	var mu sync.Mutex
	local := make(map[volume.PageIdx]fetched)
	ownLoads := 0

	snapKey := metaKey{vid: vid, lsn: lsn}
	keys := make([]metaKey, 0, len(idxs)+1)
	keys = append(keys, snapKey)
	for _, idx := range idxs {
		keys = append(keys, metaKey{vid: vid, lsn: lsn, idx: idx})
	}
	misses := 0
	for _, k := range keys {
		if _, ok := e.meta.GetIfPresent(k); !ok {
			misses++
		}
	}
	var res map[metaKey]uint64
	if misses == 0 {
		res = make(map[metaKey]uint64, len(keys))
		for _, k := range keys {
			v, ok := e.meta.GetIfPresent(k)
			if !ok {
				misses++ // evicted in between: load below
				break
			}
			res[k] = v
		}
	}
	if misses > 0 {
		loader := otter.BulkLoaderFunc[metaKey, uint64](func(ctx context.Context, ks []metaKey) (map[metaKey]uint64, error) {
			want := make([]volume.PageIdx, 0, len(ks))
			for _, k := range ks {
				if k.idx != 0 {
					want = append(want, k.idx)
				}
			}
			// Versions an older snapshot's resolution and the graft between
			// determine need no page read.
			byGraft, pcByGraft, ok := e.resolveByGraft(ctx, vid, lsn, want)
			if ok {
				rest := want[:0:0]
				for _, idx := range want {
					if _, done := byGraft[idx]; !done {
						rest = append(rest, idx)
					}
				}
				want = rest
			}
			var snap volume.Snapshot
			var pages []pageVersion
			var src string
			if !ok || len(want) > 0 {
				var err error
				snap, pages, src, err = e.fetch(ctx, vid, lsn, want, ro)
				if err != nil {
					return nil, &loadError{lsn: lsn, ro: ro, err: err}
				}
				if ok && snap.PageCount != pcByGraft {
					return nil, fmt.Errorf("%w: snapshot %s@%d has page count %d, its graft's snapshot %d", ErrBadUpstream, vid, lsn, snap.PageCount, pcByGraft)
				}
			} else {
				snap = volume.Snapshot{VID: vid, LSN: lsn, PageCount: pcByGraft}
			}
			e.rememberResolved(vid, lsn)
			out := make(map[metaKey]uint64, len(pages)+len(byGraft)+1)
			out[snapKey] = uint64(snap.PageCount)
			for idx, ver := range byGraft {
				out[metaKey{vid: vid, lsn: lsn, idx: idx}] = uint64(ver)
			}
			mu.Lock()
			defer mu.Unlock()
			ownLoads += len(ks)
			for _, p := range pages {
				out[metaKey{vid: vid, lsn: lsn, idx: p.idx}] = uint64(p.ver)
				local[p.idx] = fetched{pv: p, source: src}
				if p.ver != 0 {
					pk := pageKeyOf(vid, p.idx, p.ver)
					e.pages.Set(pk, p.data)
					e.spill(&pk, p.data, nil)
				}
			}
			if e.disk != nil {
				recs := make([]metaRecord, 0, len(out))
				for k, v := range out {
					recs = append(recs, metaRecord{key: k, val: v})
				}
				e.spill(nil, nil, recs)
			}
			return out, nil
		})
		var err error
		res, err = e.meta.BulkGet(ctx, keys, loader)
		if err != nil && ctx.Err() == nil && foreignFailure(err, lsn, ro) {
			// A joined load asked for something else: read at ro, once,
			// outside the singleflight; that answer is this request's.
			if res, err = loader(ctx, keys); err == nil {
				for k, v := range res {
					e.meta.Set(k, v)
				}
			}
		}
		if err != nil {
			return volume.Snapshot{}, nil, err
		}
		mu.Lock()
		if j := misses - ownLoads; j > 0 {
			e.metrics.joins.Add(float64(j))
		}
		mu.Unlock()
	}
	pc, ok := res[snapKey]
	if !ok {
		return volume.Snapshot{}, nil, fmt.Errorf("%w: snapshot %s@%d not resolved", ErrBadUpstream, vid, lsn)
	}
	snap := volume.Snapshot{VID: vid, LSN: lsn, PageCount: uint32(pc)}

	out := make([]pageVersion, len(idxs))
	var missKeys []pageKey
	var missPos []int
	mu.Lock()
	for i, idx := range idxs {
		v, ok := res[metaKey{vid: vid, lsn: lsn, idx: idx}]
		if !ok {
			mu.Unlock()
			return volume.Snapshot{}, nil, fmt.Errorf("%w: page %d of %s@%d not resolved", ErrBadUpstream, idx, vid, lsn)
		}
		ver := volume.LSN(v)
		if f, ok := local[idx]; ok && f.pv.ver == ver {
			out[i] = f.pv
			e.metrics.pages.WithLabelValues(f.source).Inc()
			continue
		}
		if ver == 0 {
			out[i] = pageVersion{idx: idx}
			e.metrics.pages.WithLabelValues(sourceCache).Inc()
			continue
		}
		pk := pageKeyOf(vid, idx, ver)
		if data, ok := e.pages.GetIfPresent(pk); ok {
			out[i] = pageVersion{idx: idx, ver: ver, data: data}
			e.metrics.pages.WithLabelValues(sourceCache).Inc()
			continue
		}
		missKeys = append(missKeys, pk)
		missPos = append(missPos, i)
	}
	mu.Unlock()
	if len(missKeys) == 0 {
		return snap, out, nil
	}

	// The bytes of some resolved versions are not cached: read them at lsn,
	// where the resolution says they are the visible versions.
	srcs := make(map[volume.PageIdx]string)
	ownLoads = 0
	loader := otter.BulkLoaderFunc[pageKey, []byte](func(ctx context.Context, all []pageKey) (map[pageKey][]byte, error) {
		got := make(map[pageKey][]byte, len(all))
		var ks []pageKey
		for _, k := range all {
			if data, ok := e.fromDisk(k); ok {
				got[k] = data
				continue
			}
			ks = append(ks, k)
		}
		if len(ks) == 0 {
			mu.Lock()
			ownLoads += len(all)
			mu.Unlock()
			return got, nil
		}
		want := make([]volume.PageIdx, len(ks))
		for i, k := range ks {
			want[i] = k.idx
		}
		_, pages, src, err := e.fetch(ctx, vid, lsn, want, ro)
		if err != nil {
			return nil, &loadError{lsn: lsn, ro: ro, err: err}
		}
		for i, p := range pages {
			if p.ver != ks[i].ver {
				return nil, fmt.Errorf("%w: page %d of %s@%d is version %d, resolved before as %d", ErrBadUpstream, p.idx, vid, lsn, p.ver, ks[i].ver)
			}
			got[ks[i]] = p.data
			e.spill(&ks[i], p.data, nil)
		}
		mu.Lock()
		defer mu.Unlock()
		ownLoads += len(all)
		for _, k := range ks {
			srcs[k.idx] = src
		}
		return got, nil
	})
	got, err := e.pages.BulkGet(ctx, missKeys, loader)
	if err != nil && ctx.Err() == nil && foreignFailure(err, lsn, ro) {
		// As for the resolution: a joined load of these versions read
		// another snapshot or at another consistency.
		if got, err = loader(ctx, missKeys); err == nil {
			for k, v := range got {
				e.pages.Set(k, v)
			}
		}
	}
	if err != nil {
		return volume.Snapshot{}, nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if j := len(missKeys) - ownLoads; j > 0 {
		e.metrics.joins.Add(float64(j))
	}
	for n, pk := range missKeys {
		data, ok := got[pk]
		if !ok {
			return volume.Snapshot{}, nil, fmt.Errorf("%w: page %d version %d of %s not loaded", ErrBadUpstream, pk.idx, pk.ver, vid)
		}
		src, own := srcs[pk.idx]
		if !own {
			src = sourceCache
		}
		out[missPos[n]] = pageVersion{idx: pk.idx, ver: pk.ver, data: data}
		e.metrics.pages.WithLabelValues(src).Inc()
	}
	return snap, out, nil
}

// head returns the volume's head at the requested consistency, asking the
// cluster (a linearizable read asks for a linearizable snapshot).
func (e *Edge) head(ctx context.Context, vid volume.ID, ro readOpts) (volume.Snapshot, error) {
	var snap volume.Snapshot
	err := e.up.Do(ctx, false, func(ctx context.Context, vol volumeClient) error {
		r, err := vol.GetSnapshot(ctx, connect.NewRequest(&graftv1.GetSnapshotRequest{Vid: vid.String(), Consistency: ro.cons, MinLsn: ro.minLSN}))
		if err != nil {
			return err
		}
		snap, err = snapshotFrom(r.Msg.GetSnapshot())
		return err
	})
	if err != nil {
		return volume.Snapshot{}, err
	}
	if snap.VID != vid {
		return volume.Snapshot{}, fmt.Errorf("%w: asked for the head of %s, got %s", ErrBadUpstream, vid, snap.VID)
	}
	e.rememberSnapshot(snap)
	return snap, nil
}

// rememberSnapshot caches a snapshot's page count (and that it exists).
func (e *Edge) rememberSnapshot(s volume.Snapshot) {
	if s.LSN != 0 {
		e.noteHead(s.VID, s.LSN)
		k := metaKey{vid: s.VID, lsn: s.LSN}
		e.meta.Set(k, uint64(s.PageCount))
		e.spill(nil, nil, []metaRecord{{key: k, val: uint64(s.PageCount)}})
	}
}

// spill queues entries for the disk tier, if any.
func (e *Edge) spill(pk *pageKey, data []byte, meta []metaRecord) {
	if e.disk == nil {
		return
	}
	w := diskWrite{data: data, meta: meta}
	if pk != nil {
		k := *pk
		w.page = &k
	}
	e.disk.enqueue(w)
}

// fromDisk returns a page version's bytes from the disk tier, if any.
func (e *Edge) fromDisk(k pageKey) ([]byte, bool) {
	if e.disk == nil {
		return nil, false
	}
	return e.disk.getPage(k)
}

// readPages serves ReadPages: a head-relative read learns the head first,
// then everything is a read of a fixed snapshot.
func (e *Edge) readPages(ctx context.Context, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx, ro readOpts) (volume.Snapshot, []pageVersion, error) {
	if lsn != 0 {
		return e.readAt(ctx, vid, lsn, idxs, ro)
	}
	snap, err := e.head(ctx, vid, ro)
	if err != nil {
		return volume.Snapshot{}, nil, err
	}
	if snap.LSN == 0 { // nothing committed: every page reads as never written
		out := make([]pageVersion, len(idxs))
		for i, idx := range idxs {
			out[i] = pageVersion{idx: idx}
		}
		e.metrics.pages.WithLabelValues(sourceCache).Add(float64(len(idxs)))
		return snap, out, nil
	}
	return e.readAt(ctx, vid, snap.LSN, idxs, atLSN(snap.LSN))
}

func snapshotFrom(s *graftv1.Snapshot) (volume.Snapshot, error) {
	if s == nil {
		return volume.Snapshot{}, fmt.Errorf("%w: no snapshot", ErrBadUpstream)
	}
	vid, err := volume.ParseID(s.GetVid())
	if err != nil {
		return volume.Snapshot{}, fmt.Errorf("%w: snapshot vid: %w", ErrBadUpstream, err)
	}
	return volume.Snapshot{VID: vid, LSN: volume.LSN(s.GetLsn()), PageCount: s.GetPageCount()}, nil
}

func snapshotProto(s volume.Snapshot) *graftv1.Snapshot {
	return &graftv1.Snapshot{Vid: s.VID.String(), Lsn: uint64(s.LSN), PageCount: s.PageCount}
}
