package flusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// ReaderConfig bounds a Reader's caches.
type ReaderConfig struct {
	// PageCacheBytes bounds the cache of verified page bytes. Default 64 MiB.
	PageCacheBytes int
	// Segments is how many decoded segment indexes are cached. Default 1024.
	Segments int
	// Records is how many decoded log records are cached. Default 4096.
	Records int
	// Fetches bounds the concurrent object-store GETs of one call.
	// Default 8.
	Fetches int
	// LoadTimeout bounds one load of a volume's page-version index (the
	// log records a read needs that are not loaded yet). A load runs
	// detached from the callers waiting for it, each of which still gives
	// up at its own deadline. Default 1m.
	LoadTimeout time.Duration
	// Checkpoints is how many decoded checkpoints are cached. Default 64.
	Checkpoints int
	// Logger reports checkpoints that fail their checksum. Default
	// slog.Default().
	Logger *slog.Logger
}

// DefaultReaderConfig returns a ReaderConfig with every default filled in.
func DefaultReaderConfig() ReaderConfig {
	return ReaderConfig{PageCacheBytes: 64 << 20, Segments: 1024, Records: 4096, Fetches: 8, LoadTimeout: time.Minute, Checkpoints: 64}
}

// Reader reads flushed volume history from an object store: snapshots,
// commit metadata, grafts and page versions. It needs nothing but the
// bucket, so it serves both the cluster (which passes the History it holds
// in its state) and clusterless readers (which list the bucket, see
// History). A Reader is safe for concurrent use.
//
// Finding the version of page P visible at LSN L is logarithmic in the
// volume's history: per volume, the Reader keeps for each page the
// ascending list of log records whose segment holds a version of it; a
// binary search finds the last such record at or below L, and the
// segment's own index (binary search again) the version.
type Reader struct {
	store   objstore.Store
	cfg     ReaderConfig
	pages   *lru.Cache[pageKey, []byte]
	indexes *lru.Cache[segment.ID, segment.Index]
	records *lru.Cache[recordKey, *segment.Record]
	ckpts   *lru.Cache[recordKey, *segment.Checkpoint]
	views   *lru.Cache[viewKey, fsm.History] // bucket views of old snapshots
	deltas  *lru.Cache[recordKey, *segment.Checkpoint]
	merged  *lru.Cache[recordKey, *segment.Checkpoint] // checkpoints assembled from a delta and its base
	noDelta *lru.Cache[recordKey, struct{}]            // deltas found missing
	// listGens: volumes whose checkpoints are resolved by listing their
	// generations, not read as generation 0 by key (set once a read found
	// an object missing under a cached view; see Checkpoint).
	listGens *lru.Cache[volume.ID, struct{}]
	oldGens  *lru.Cache[genKey, *segment.Checkpoint] // generations read by GC
	// coldServed: volumes (per checkpoint) whose first read went through
	// a delta (coldView); guarded by mu.
	coldServed *lru.Cache[volKey, struct{}]
	log        *slog.Logger
	// badCkpts counts checkpoints found failing their checksum (or
	// missing while named), each fallen back from.
	badCkpts atomic.Uint64
	// staleRetries counts reads retried after an object went missing
	// under a cached view (retryStale).
	staleRetries atomic.Uint64

	mu    sync.Mutex
	vols  *lru.Cache[volKey, *volIndex]
	loads singleflight.Group // index loads in flight, by volume and checkpoint
}

// volKey names a page-version index: the records of a volume after one
// checkpoint (0: from the start).
type volKey struct {
	vid  volume.ID
	ckpt volume.LSN
}

type pageKey struct {
	sid segment.ID
	i   int
}

type recordKey struct {
	vid  volume.ID
	from volume.LSN
}

// volIndex is the page-version index of one volume's loaded records. mu
// guards the fields and is never held across a fetch.
type volIndex struct {
	mu    sync.Mutex
	recs  []recordMeta                // loaded records, in history order
	pages map[volume.PageIdx][]uint32 // page -> ordinals of records holding it
}

type recordMeta struct {
	from, to volume.LSN
	seg      segment.ID
	entries  int // page versions in the segment
}

// NewReader returns a Reader over store.
func NewReader(store objstore.Store, cfg ReaderConfig) (*Reader, error) {
	d := DefaultReaderConfig()
	if cfg.PageCacheBytes <= 0 {
		cfg.PageCacheBytes = d.PageCacheBytes
	}
	if cfg.Segments <= 0 {
		cfg.Segments = d.Segments
	}
	if cfg.Records <= 0 {
		cfg.Records = d.Records
	}
	if cfg.Fetches <= 0 {
		cfg.Fetches = d.Fetches
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = d.LoadTimeout
	}
	if cfg.Checkpoints <= 0 {
		cfg.Checkpoints = d.Checkpoints
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Reader{store: store, cfg: cfg, log: cfg.Logger}
	var err error
	if r.vols, err = lru.New[volKey, *volIndex](4096); err != nil {
		return nil, err
	}
	if r.ckpts, err = lru.New[recordKey, *segment.Checkpoint](cfg.Checkpoints); err != nil {
		return nil, err
	}
	if r.deltas, err = lru.New[recordKey, *segment.Checkpoint](cfg.Checkpoints); err != nil {
		return nil, err
	}
	if r.merged, err = lru.New[recordKey, *segment.Checkpoint](cfg.Checkpoints); err != nil {
		return nil, err
	}
	if r.noDelta, err = lru.New[recordKey, struct{}](4096); err != nil {
		return nil, err
	}
	if r.coldServed, err = lru.New[volKey, struct{}](4096); err != nil {
		return nil, err
	}
	if r.listGens, err = lru.New[volume.ID, struct{}](4096); err != nil {
		return nil, err
	}
	if r.oldGens, err = lru.New[genKey, *segment.Checkpoint](max(16, cfg.Checkpoints)); err != nil {
		return nil, err
	}
	if r.views, err = lru.New[viewKey, fsm.History](1024); err != nil {
		return nil, err
	}
	if r.pages, err = lru.New[pageKey, []byte](max(1, cfg.PageCacheBytes/volume.PageSize)); err != nil {
		return nil, err
	}
	if r.indexes, err = lru.New[segment.ID, segment.Index](cfg.Segments); err != nil {
		return nil, err
	}
	if r.records, err = lru.New[recordKey, *segment.Record](cfg.Records); err != nil {
		return nil, err
	}
	return r, nil
}

// Record returns the log record of vid that starts at from.
func (r *Reader) Record(ctx context.Context, vid volume.ID, from volume.LSN) (*segment.Record, error) {
	return r.record(ctx, vid, from)
}

func (r *Reader) record(ctx context.Context, vid volume.ID, from volume.LSN) (*segment.Record, error) {
	k := recordKey{vid, from}
	if rec, ok := r.records.Get(k); ok {
		return rec, nil
	}
	b, err := r.store.Get(ctx, segment.LogKey(vid, from))
	if err != nil {
		return nil, &StoreError{Op: fmt.Sprintf("get log record %s@%d", vid, from), Err: err}
	}
	rec, err := segment.DecodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("log record %s@%d: %w", vid, from, err)
	}
	if rec.VID != vid || rec.From != from {
		return nil, fmt.Errorf("%w: log record %s@%d holds %s@%d", ErrLayout, vid, from, rec.VID, rec.From)
	}
	r.records.Add(k, &rec)
	return &rec, nil
}

// recordAt returns the record holding lsn, checking it against h.
func (r *Reader) recordAt(ctx context.Context, h fsm.History, lsn volume.LSN) (*segment.Record, error) {
	i, ok := h.Locate(lsn)
	if !ok {
		return nil, fmt.Errorf("%w: lsn %d of %s (flushed history covers [%d, %d])", ErrNotFlushed, lsn, h.VID, firstOf(h), h.Flushed)
	}
	from, to := h.Range(i)
	rec, err := r.record(ctx, h.VID, from)
	if err != nil {
		return nil, err
	}
	if rec.To != to {
		return nil, fmt.Errorf("%w: log record %s@%d ends at %d, history says %d", ErrLayout, h.VID, from, rec.To, to)
	}
	return rec, nil
}

func firstOf(h fsm.History) volume.LSN {
	if h.Checkpoint > 0 {
		return h.Checkpoint
	}
	if len(h.Froms) == 0 {
		return 0
	}
	return h.Froms[0]
}

// Commit returns the metadata of the flushed commit at lsn. Below h's
// horizon it answers a *fsm.RetentionError.
func (r *Reader) Commit(ctx context.Context, h fsm.History, lsn volume.LSN) (fsm.CommitInfo, error) {
	if err := h.CheckRetained(lsn); err != nil {
		return fsm.CommitInfo{}, err
	}
	h, err := r.viewFor(ctx, h, lsn)
	if err != nil {
		return fsm.CommitInfo{}, err
	}
	if lsn == h.Checkpoint {
		ck, err := r.checkpointOf(ctx, h)
		var bad *badCheckpointError
		if errors.As(err, &bad) {
			// The record ending at the checkpoint has the commit too.
			if h, err = r.olderView(ctx, h, lsn); err != nil {
				return fsm.CommitInfo{}, err
			}
		} else if err != nil {
			return fsm.CommitInfo{}, err
		} else {
			return commitInfo(ck.Commit), nil
		}
	}
	rec, err := r.recordAt(ctx, h, lsn)
	if err != nil {
		return fsm.CommitInfo{}, err
	}
	c, ok := rec.Commit(lsn)
	if !ok {
		return fsm.CommitInfo{}, fmt.Errorf("%w: log record %s@%d lacks lsn %d", ErrLayout, h.VID, rec.From, lsn)
	}
	return commitInfo(c), nil
}

func commitInfo(c segment.RecordCommit) fsm.CommitInfo {
	return fsm.CommitInfo{LSN: c.LSN, PageCount: c.PageCount, Hash: c.Hash, TimeUnixMs: c.TimeUnixMs, Graft: c.Graft}
}

// Snapshot returns the volume's snapshot at a flushed lsn.
func (r *Reader) Snapshot(ctx context.Context, h fsm.History, lsn volume.LSN) (volume.Snapshot, error) {
	c, err := r.Commit(ctx, h, lsn)
	if err != nil {
		return volume.Snapshot{}, err
	}
	return volume.Snapshot{VID: h.VID, LSN: lsn, PageCount: c.PageCount}, nil
}

// Commits returns the metadata of the flushed commits in (since, until],
// at most limit of them (0: no limit).
func (r *Reader) Commits(ctx context.Context, h fsm.History, since, until volume.LSN, limit int) ([]fsm.CommitInfo, error) {
	if err := h.CheckRetained(since + 1); err != nil {
		return nil, err
	}
	h.Horizon = 0 // checked; the views below need no check
	var out []fsm.CommitInfo
	var v fsm.History
	for lsn := since + 1; lsn <= until && (limit <= 0 || len(out) < limit); {
		if v.VID != h.VID || lsn > v.Flushed || lsn < v.Checkpoint {
			var err error
			if v, err = r.rangeView(ctx, h, lsn, until); err != nil {
				return nil, err
			}
		}
		if lsn == v.Checkpoint {
			c, err := r.Commit(ctx, v, lsn)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
			lsn++
			continue
		}
		rec, err := r.recordAt(ctx, v, lsn)
		if err != nil {
			return nil, err
		}
		for ; lsn <= min(until, rec.To) && (limit <= 0 || len(out) < limit); lsn++ {
			c, _ := rec.Commit(lsn)
			out = append(out, commitInfo(c))
		}
	}
	return out, nil
}

// Graft returns the union of the pages changed by the flushed commits in
// (since, until].
//
// Across h's horizon (since below it) the commits are no longer known: it
// answers every page of the snapshot at until, which is still correct for a
// client pulling changes (it re-reads pages that may not have changed).
func (r *Reader) Graft(ctx context.Context, h fsm.History, since, until volume.LSN) (volume.PageSet, error) {
	if since+1 < h.Horizon && since < until {
		c, err := r.Commit(ctx, h, until)
		if err != nil {
			return volume.PageSet{}, err
		}
		return volume.AllPages(c.PageCount), nil
	}
	h.Horizon = 0
	var set volume.PageSet
	var v fsm.History
	for lsn := since + 1; lsn <= until; {
		if v.VID != h.VID || lsn > v.Flushed || lsn < v.Checkpoint {
			var err error
			if v, err = r.rangeView(ctx, h, lsn, until); err != nil {
				return volume.PageSet{}, err
			}
		}
		if lsn == v.Checkpoint {
			c, err := r.Commit(ctx, v, lsn)
			if err != nil {
				return volume.PageSet{}, err
			}
			set.Union(c.Graft)
			lsn++
			continue
		}
		rec, err := r.recordAt(ctx, v, lsn)
		if err != nil {
			return volume.PageSet{}, err
		}
		if lsn == rec.From && until >= rec.To {
			set.Union(rec.Graft())
			lsn = rec.To + 1
			continue
		}
		for ; lsn <= min(until, rec.To); lsn++ {
			c, _ := rec.Commit(lsn)
			set.Union(c.Graft)
		}
	}
	return set, nil
}

// ReadPages returns the versions of pages idxs visible at lsn, which must
// be flushed (lsn <= h.Flushed). A page with no version at or below lsn
// reads as zeros with LSN 0 (Data nil). It does not apply the snapshot's
// page count: callers that read a whole snapshot zero the pages beyond it.
// Pages not written since the view's checkpoint come from the checkpoint;
// a checkpoint failing its checksum is reported and the read falls back to
// the one before it.
func (r *Reader) ReadPages(ctx context.Context, h fsm.History, lsn volume.LSN, idxs []volume.PageIdx) ([]fsm.PageVersion, error) {
	if err := h.CheckRetained(lsn); err != nil {
		return nil, err
	}
	var out []fsm.PageVersion
	err := r.retryStale(ctx, h.VID, func() error {
		var err error
		out, err = r.readPagesIn(ctx, h, lsn, idxs)
		return err
	})
	return out, err
}

// readPagesIn is ReadPages through the view of lsn (cached when it can be).
func (r *Reader) readPagesIn(ctx context.Context, h fsm.History, lsn volume.LSN, idxs []volume.PageIdx) ([]fsm.PageVersion, error) {
	v, err := r.viewFor(ctx, h, lsn)
	if err != nil {
		return nil, err
	}
	for {
		out, err := r.readPages(ctx, v, lsn, idxs)
		var bad *badCheckpointError
		if !errors.As(err, &bad) {
			return out, err
		}
		if v, err = r.olderView(ctx, v, lsn); err != nil {
			return nil, err
		}
	}
}

func (r *Reader) readPages(ctx context.Context, h fsm.History, lsn volume.LSN, idxs []volume.PageIdx) ([]fsm.PageVersion, error) {
	if lsn == 0 || lsn > h.Flushed || lsn < h.Checkpoint {
		return nil, fmt.Errorf("%w: lsn %d of %s (flushed history covers [%d, %d])", ErrNotFlushed, lsn, h.VID, firstOf(h), h.Flushed)
	}
	k := -1
	var vi *volIndex
	if lsn > h.Checkpoint {
		var ok bool
		if k, ok = h.Locate(lsn); !ok {
			return nil, fmt.Errorf("%w: lsn %d of %s (flushed history covers [%d, %d])", ErrNotFlushed, lsn, h.VID, firstOf(h), h.Flushed)
		}
		var err error
		if vi, err = r.index(ctx, h, k); err != nil {
			return nil, err
		}
	}
	out := make([]fsm.PageVersion, len(idxs))
	type job struct {
		pos int // -1-pos for a fallback
		rec recordMeta
		cp  *segment.CheckpointPage // set: read this checkpoint page instead
		at  volume.LSN
	}
	var jobs []job
	var fromCkpt []int // positions (or -1-pos fallbacks) the checkpoint answers
	if vi != nil {
		vi.mu.Lock()
	}
	for i, idx := range idxs {
		out[i] = fsm.PageVersion{Idx: idx}
		var ords []uint32
		if vi != nil {
			ords = vi.pages[idx]
		}
		// The last record at or below k holding a version of idx.
		j := sort.Search(len(ords), func(j int) bool { return int(ords[j]) > k }) - 1
		if j < 0 {
			fromCkpt = append(fromCkpt, i)
			continue
		}
		rec := vi.recs[ords[j]]
		if int(ords[j]) == k {
			jobs = append(jobs, job{pos: i, rec: rec, at: lsn})
			// If that record's version is newer than lsn, the one before
			// it (or the checkpoint) holds the answer: queue it as a
			// fallback.
			if j > 0 {
				jobs = append(jobs, job{pos: -1 - i, rec: vi.recs[ords[j-1]], at: vi.recs[ords[j-1]].to})
			} else {
				fromCkpt = append(fromCkpt, -1-i)
			}
			continue
		}
		jobs = append(jobs, job{pos: i, rec: rec, at: rec.to})
	}
	if vi != nil {
		vi.mu.Unlock()
	}
	var ck *segment.Checkpoint
	if len(fromCkpt) > 0 && h.Checkpoint > 0 {
		var err error
		if ck, err = r.checkpointOf(ctx, h); err != nil {
			return nil, err
		}
		for _, pos := range fromCkpt {
			i := pos
			if i < 0 {
				i = -1 - i
			}
			if p, ok := ck.Lookup(idxs[i]); ok {
				jobs = append(jobs, job{pos: pos, cp: &p})
			}
		}
	}

	found := make([]bool, len(idxs))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Fetches)
	// Primary lookups first; fallbacks only for pages still missing.
	for pass := 0; pass < 2; pass++ {
		for _, jb := range jobs {
			if (pass == 0) != (jb.pos >= 0) {
				continue
			}
			pos := jb.pos
			if pos < 0 {
				pos = -1 - pos
				if found[pos] {
					continue
				}
			}
			g.Go(func() error {
				var pv fsm.PageVersion
				var ok bool
				var err error
				if jb.cp != nil {
					pv, err = r.readCheckpointPage(gctx, h.VID, ck, *jb.cp)
					ok = err == nil
				} else {
					pv, ok, err = r.readVersion(gctx, h.VID, jb.rec, idxs[pos], jb.at)
				}
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					out[pos], found[pos] = pv, true
				} else if jb.pos < 0 || jb.at != lsn {
					return fmt.Errorf("%w: segment %s of %s lacks page %d promised by its log record", ErrLayout, jb.rec.seg, h.VID, idxs[pos])
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		g, gctx = errgroup.WithContext(ctx)
		g.SetLimit(r.cfg.Fetches)
	}
	return out, nil
}

// readVersion reads the newest version of idx at or below at from rec's
// segment.
func (r *Reader) readVersion(ctx context.Context, vid volume.ID, rec recordMeta, idx volume.PageIdx, at volume.LSN) (fsm.PageVersion, bool, error) {
	ix, err := r.segmentIndex(ctx, vid, rec)
	if err != nil {
		return fsm.PageVersion{}, false, err
	}
	i, e, ok := ix.Lookup(idx, at)
	if !ok {
		return fsm.PageVersion{}, false, nil
	}
	pk := pageKey{rec.seg, i}
	if data, ok := r.pages.Get(pk); ok {
		return fsm.PageVersion{Idx: idx, LSN: e.LSN, Data: data}, true, nil
	}
	off, n := segment.PageRange(i)
	data, err := r.store.GetRange(ctx, segment.SegmentKey(vid, rec.seg), off, n)
	if err != nil {
		return fsm.PageVersion{}, false, &StoreError{Op: fmt.Sprintf("read page %d of segment %s", idx, rec.seg), Err: err}
	}
	if err := segment.VerifyPage(e, data); err != nil {
		return fsm.PageVersion{}, false, fmt.Errorf("segment %s of %s: %w", rec.seg, vid, err)
	}
	r.pages.Add(pk, data)
	return fsm.PageVersion{Idx: idx, LSN: e.LSN, Data: data}, true, nil
}

// segmentIndex fetches and verifies a segment's footer and index with one
// ranged GET: the record tells how many page versions the segment holds, so
// the index's offset is known without a HEAD request.
func (r *Reader) segmentIndex(ctx context.Context, vid volume.ID, rec recordMeta) (segment.Index, error) {
	if ix, ok := r.indexes.Get(rec.seg); ok {
		return ix, nil
	}
	off := int64(rec.entries) * segment.PageSize
	n := int64(rec.entries)*segment.EntrySize + segment.FooterSize
	b, err := r.store.GetRange(ctx, segment.SegmentKey(vid, rec.seg), off, n)
	if err != nil {
		return segment.Index{}, &StoreError{Op: "read index of segment " + rec.seg.String(), Err: err}
	}
	f, err := segment.DecodeFooter(b)
	if err != nil {
		return segment.Index{}, fmt.Errorf("segment %s of %s: %w", rec.seg, vid, err)
	}
	if f.VID != vid || int(f.Count) != rec.entries || f.MinLSN < rec.from || f.MaxLSN > rec.to {
		return segment.Index{}, fmt.Errorf("%w: segment %s footer (vid %s, %d entries, lsn [%d, %d]) disagrees with its log record (vid %s, %d entries, lsn [%d, %d])",
			ErrLayout, rec.seg, f.VID, f.Count, f.MinLSN, f.MaxLSN, vid, rec.entries, rec.from, rec.to)
	}
	ix, err := segment.DecodeIndex(f, b[:len(b)-segment.FooterSize])
	if err != nil {
		return segment.Index{}, fmt.Errorf("segment %s of %s: %w", rec.seg, vid, err)
	}
	r.indexes.Add(rec.seg, ix)
	return ix, nil
}

// index returns the volume's page-version index with every record up to
// ordinal k loaded. Missing records are fetched by one load per volume at a
// time, which concurrent callers share (singleflight): a caller waits for
// it only as long as its own ctx allows and then returns ctx.Err(), while
// the load goes on for the others. The load runs detached from the caller
// that started it (context.WithoutCancel), bounded by LoadTimeout: were it
// cancelled when its callers leave, callers whose deadlines are shorter
// than one load would restart it forever; finished, it serves every later
// read from memory.
func (r *Reader) index(ctx context.Context, h fsm.History, k int) (*volIndex, error) {
	key := volKey{h.VID, h.Checkpoint}
	r.mu.Lock()
	vi, _ := r.vols.Get(key)
	if vi == nil {
		vi = &volIndex{pages: map[volume.PageIdx][]uint32{}}
		r.vols.Add(key, vi)
	}
	r.mu.Unlock()
	for !vi.covers(h, k) {
		ch := r.loads.DoChan(fmt.Sprintf("%s@%d", h.VID, h.Checkpoint), func() (any, error) {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.LoadTimeout)
			defer cancel()
			return nil, r.load(lctx, vi, h, k)
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return nil, res.Err
			}
			// The load may have been another caller's, for fewer records
			// or another history: look again.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return vi, nil
}

// covers reports whether the records up to ordinal k are loaded and are
// those of h.
func (vi *volIndex) covers(h fsm.History, k int) bool {
	vi.mu.Lock()
	defer vi.mu.Unlock()
	if len(vi.recs) <= k {
		return false
	}
	for i, m := range vi.recs[:k+1] {
		if from, to := h.Range(i); from != m.from || to != m.to {
			return false
		}
	}
	return true
}

// load fetches the records of h up to ordinal k that vi lacks, in
// parallel, and adds them. Loads of one volume never overlap (index), so
// vi.mu is held only to read and to extend the index, never across a
// fetch, and vi.recs only grows while a load runs.
func (r *Reader) load(ctx context.Context, vi *volIndex, h fsm.History, k int) error {
	vi.mu.Lock()
	// The loaded records must be a prefix of h; a different history (the
	// volume was recovered into another cluster incarnation) starts over.
	for i, m := range vi.recs {
		if i > k {
			break
		}
		if from, to := h.Range(i); from != m.from || to != m.to {
			vi.recs, vi.pages = nil, map[volume.PageIdx][]uint32{}
			break
		}
	}
	start := len(vi.recs)
	vi.mu.Unlock()
	// In batches, each added as soon as it is fetched: a load cut short by
	// LoadTimeout keeps what it fetched, and the next one goes on from
	// there, however long the history.
	for ; start <= k; start += loadBatchSize {
		if err := r.loadBatch(ctx, vi, h, start, min(k, start+loadBatchSize-1)); err != nil {
			return err
		}
	}
	return nil
}

// loadBatchSize is how many log records a load fetches before it adds them to
// the index.
const loadBatchSize = 256

// loadBatch fetches the records of h at ordinals [lo, hi] and appends them
// to vi, which holds exactly lo records.
func (r *Reader) loadBatch(ctx context.Context, vi *volIndex, h fsm.History, lo, hi int) error {
	recs := make([]*segment.Record, hi+1-lo)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Fetches)
	for i := range recs {
		from, to := h.Range(lo + i)
		g.Go(func() error {
			rec, err := r.record(gctx, h.VID, from)
			if err != nil {
				return err
			}
			if rec.To != to {
				return fmt.Errorf("%w: log record %s@%d ends at %d, history says %d", ErrLayout, h.VID, from, rec.To, to)
			}
			recs[i] = rec
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	vi.mu.Lock()
	defer vi.mu.Unlock()
	for _, rec := range recs {
		ord := uint32(len(vi.recs))
		union := rec.Graft()
		entries := 0
		for _, c := range rec.Commits {
			entries += c.Graft.Len()
		}
		vi.recs = append(vi.recs, recordMeta{from: rec.From, to: rec.To, seg: rec.Segment, entries: entries})
		for idx := range union.All() {
			vi.pages[idx] = append(vi.pages[idx], ord)
		}
	}
	return nil
}

// ReadSnapshot reads pages of a flushed snapshot straight from the object
// store, with no cluster: lsn 0 means the newest flushed snapshot. Pages
// beyond the snapshot's page count read as zeros with LSN 0. It starts from
// the newest checkpoint at or below lsn and reads only the log records
// after it.
func (r *Reader) ReadSnapshot(ctx context.Context, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []fsm.PageVersion, error) {
	var snap volume.Snapshot
	var pages []fsm.PageVersion
	err := r.retryStale(ctx, vid, func() error {
		var err error
		snap, pages, err = r.readSnapshot(ctx, vid, lsn, idxs)
		return err
	})
	return snap, pages, err
}

func (r *Reader) readSnapshot(ctx context.Context, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []fsm.PageVersion, error) {
	var h fsm.History
	var err error
	if lsn == 0 {
		// The newest delta is the bucket's head: one is written for every
		// round before the round completes (headView).
		var ok bool
		if h, ok, err = r.headView(ctx, vid); err == nil && !ok {
			h, err = r.History(ctx, vid)
		}
	} else {
		h, err = r.bucketView(ctx, vid, lsn, lsn)
	}
	if err != nil {
		return volume.Snapshot{}, nil, err
	}
	if h.Flushed == 0 {
		return volume.Snapshot{}, nil, fmt.Errorf("%w: volume %s has nothing flushed", ErrNotFlushed, vid)
	}
	if lsn == 0 {
		lsn = h.Flushed
	}
	return r.ReadSnapshotAt(ctx, h, lsn, idxs)
}

// ReadSnapshotAt reads pages of the flushed snapshot at lsn of history h.
// Pages beyond the snapshot's page count read as zeros with LSN 0.
func (r *Reader) ReadSnapshotAt(ctx context.Context, h fsm.History, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []fsm.PageVersion, error) {
	snap, err := r.Snapshot(ctx, h, lsn)
	if err != nil {
		return volume.Snapshot{}, nil, err
	}
	pages, err := r.ReadPages(ctx, h, lsn, idxs)
	if err != nil {
		return volume.Snapshot{}, nil, err
	}
	for i := range pages {
		if uint64(pages[i].Idx) > uint64(snap.PageCount) {
			pages[i] = fsm.PageVersion{Idx: pages[i].Idx}
		}
	}
	return snap, pages, nil
}

func isExists(err error) bool { return errors.Is(err, objstore.ErrExists) }
