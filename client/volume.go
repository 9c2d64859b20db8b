package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect"
	"golang.org/x/sync/singleflight"

	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/volume"
)

// Snapshot is a LOCAL snapshot of a volume replica.
type Snapshot struct {
	VID volume.ID
	// LocalLSN is the replica's local commit counter (0: empty).
	LocalLSN volume.LSN
	// RemoteLSN is the remote LSN this local snapshot is based on, or was
	// pushed as (0: none). Pending pages are fetched at it.
	RemoteLSN volume.LSN
	PageCount uint32
}

// Oracle predicts the pages a reader wants next. One per volume; the
// replica calls it under a lock, so it need not be safe for concurrent use.
type Oracle interface {
	// Observe records a read of idx; hit reports that the page was already
	// local (no fetch needed).
	Observe(idx volume.PageIdx, hit bool)
	// Predict is called on a miss of idx (after Observe) and returns up to
	// max other page indexes likely to be read soon, best first. The
	// replica fetches the ones that are pending, in the same ReadPages call.
	Predict(idx volume.PageIdx, max int) []volume.PageIdx
}

// Stats are a volume replica's counters since the Runtime opened it.
type Stats struct {
	// Fetched counts pages received from the cluster (read or predicted).
	Fetched uint64
	// RoundTrips counts ReadPages calls.
	RoundTrips uint64
	// Prefetched counts predicted pages fetched along with a miss.
	Prefetched uint64
	// PrefetchHits counts prefetched pages read later.
	PrefetchHits uint64
	// Reads counts ReadPage calls; Misses those that needed a fetch.
	Reads, Misses uint64
	// Present and Pending count pages at the latest local snapshot whose
	// bytes are local, and whose bytes are not fetched yet.
	Present, Pending uint64
	// Versions counts the page versions stored (Compact deletes the ones
	// nothing can read).
	Versions uint64
}

// Volume is a local, partial replica of one volume. It is safe for
// concurrent use.
type Volume struct {
	rt *Runtime

	// syncMu serializes Push, Pull, Reset, Replay and Fork.
	syncMu sync.Mutex

	mu    sync.Mutex // guards vid and state
	vid   volume.ID
	state volState

	oracleMu   sync.Mutex
	oracle     Oracle
	prefetched map[volume.PageIdx]struct{} // fetched by prediction, not read yet

	pins map[pinKey]int // guarded by mu: live Readers and Writers by snapshot

	flight singleflight.Group

	fetched, roundTrips, prefetchedN, prefetchHits, reads, misses atomic.Uint64

	syncState syncLoop
}

func newVolume(rt *Runtime, vid volume.ID, st volState) *Volume {
	return &Volume{rt: rt, vid: vid, state: st, oracle: rt.cfg.Oracle(), prefetched: make(map[volume.PageIdx]struct{}), pins: make(map[pinKey]int)}
}

// VID returns the volume's ID (a new one after Fork).
func (v *Volume) VID() volume.ID {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.vid
}

// Snapshot returns the latest local snapshot.
func (v *Volume) Snapshot() Snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snapshotLocked()
}

func (v *Volume) snapshotLocked() Snapshot {
	return Snapshot{VID: v.vid, LocalLSN: v.state.LocalLSN, RemoteLSN: v.state.RemoteLSN, PageCount: v.state.PageCount}
}

// Status returns the volume's sync status.
func (v *Volume) Status() Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state.Status
}

// Stats returns the volume's counters; Present and Pending scan the store.
func (v *Volume) Stats() Stats {
	s := Stats{
		Fetched: v.fetched.Load(), RoundTrips: v.roundTrips.Load(), Prefetched: v.prefetchedN.Load(),
		PrefetchHits: v.prefetchHits.Load(), Reads: v.reads.Load(), Misses: v.misses.Load(),
	}
	snap := v.Snapshot()
	var last volume.PageIdx
	var tag byte
	var have bool
	count := func() {
		if !have {
			return
		}
		switch tag {
		case tagPending:
			s.Pending++
		default:
			s.Present++
		}
	}
	_ = v.rt.store.View(func(tx store.Tx) error {
		return tx.Scan(store.Pages, snap.VID[:], func(k, val []byte) error {
			idx, lsn, err := parsePageKey(k)
			if err != nil {
				return err
			}
			s.Versions++
			if lsn > snap.LocalLSN {
				return nil
			}
			if idx != last {
				count()
				have = false
			}
			last = idx
			if len(val) > 0 {
				tag, have = val[0], true
			}
			return nil
		})
	})
	count()
	return s
}

// Reader reads one local snapshot.
type Reader struct {
	v    *Volume
	snap Snapshot
}

// Reader returns a reader pinned to v.Snapshot(): later commits, pulls and
// resets never change what it reads.
func (v *Volume) Reader() *Reader {
	v.mu.Lock()
	r := &Reader{v: v, snap: v.snapshotLocked()}
	p := v.pinLocked(r.snap)
	v.mu.Unlock()
	watchPin(r, p)
	return r
}

// Snapshot returns the reader's snapshot.
func (r *Reader) Snapshot() Snapshot { return r.snap }

// ReadPage returns page idx at the reader's snapshot (4096 bytes; zeros if
// never written), fetching it from the cluster when it is pending.
func (r *Reader) ReadPage(ctx context.Context, idx volume.PageIdx) ([]byte, error) {
	defer runtime.KeepAlive(r) // its pin keeps the versions it reads
	return r.v.readAt(ctx, r.snap, idx)
}

func checkIdx(idx volume.PageIdx) error {
	if !idx.Valid() {
		return fmt.Errorf("%w: page index %d (must be >= 1)", ErrInvalidPage, idx)
	}
	return nil
}

// lookup returns the tag, data copy and local LSN of idx's version at
// snap; found is false for a page never written.
func (v *Volume) lookup(tx store.Tx, snap Snapshot, idx volume.PageIdx) (tag byte, data []byte, lsn volume.LSN, found bool, err error) {
	k, val := tx.Floor(store.Pages, pagePrefix(snap.VID, idx), pageKey(snap.VID, idx, snap.LocalLSN))
	if k == nil {
		return 0, nil, 0, false, nil
	}
	if _, lsn, err = parsePageKey(k); err != nil {
		return 0, nil, 0, false, err
	}
	tag, data, err = decodePageValue(val)
	if err != nil {
		return 0, nil, 0, false, fmt.Errorf("page %d at local LSN %d: %w", idx, lsn, err)
	}
	if data != nil {
		data = append([]byte(nil), data...)
	}
	return tag, data, lsn, true, nil
}

func (v *Volume) readAt(ctx context.Context, snap Snapshot, idx volume.PageIdx) ([]byte, error) {
	if err := checkIdx(idx); err != nil {
		return nil, err
	}
	v.reads.Add(1)
	var (
		tag   byte
		data  []byte
		lsn   volume.LSN
		found bool
	)
	err := v.rt.store.View(func(tx store.Tx) error {
		var err error
		tag, data, lsn, found, err = v.lookup(tx, snap, idx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read page %d of %s: %w", idx, snap.VID, err)
	}
	if !found || tag != tagPending {
		v.oracleMu.Lock()
		v.oracle.Observe(idx, true)
		if _, ok := v.prefetched[idx]; ok {
			delete(v.prefetched, idx)
			v.prefetchHits.Add(1)
		}
		v.oracleMu.Unlock()
		if data == nil {
			return volume.ZeroPage(), nil
		}
		return data, nil
	}
	if plantedStaleRead && lsn > 1 {
		older := snap
		older.LocalLSN = lsn - 1
		var otag byte
		var odata []byte
		var ofound bool
		if v.rt.store.View(func(tx store.Tx) error {
			var err error
			otag, odata, _, ofound, err = v.lookup(tx, older, idx)
			return err
		}) == nil && ofound && otag != tagPending {
			if odata == nil {
				return volume.ZeroPage(), nil
			}
			return odata, nil
		}
	}
	v.misses.Add(1)
	key := fmt.Sprintf("%s/%d/%d/%d", snap.VID, idx, lsn, snap.RemoteLSN)
	for attempt := 0; ; attempt++ {
		out, err, shared := v.flight.Do(key, func() (any, error) { return v.fetch(ctx, snap, idx, lsn) })
		if err != nil && shared && ctx.Err() == nil && attempt < 3 &&
			(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue // the fetch this read joined ended with its caller's ctx
		}
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), out.([]byte)...), nil
	}
}

// fetch reads pending page idx (its version at local LSN lsn) and the
// oracle's pending predictions in one ReadPages at snap.RemoteLSN, stores
// them, and returns idx's bytes.
func (v *Volume) fetch(ctx context.Context, snap Snapshot, idx volume.PageIdx, lsn volume.LSN) ([]byte, error) {
	v.oracleMu.Lock()
	v.oracle.Observe(idx, false)
	var preds []volume.PageIdx
	if v.rt.cfg.MaxPrefetch > 0 {
		preds = v.oracle.Predict(idx, v.rt.cfg.MaxPrefetch)
	}
	delete(v.prefetched, idx)
	v.oracleMu.Unlock()

	wants := []pendingPage{{idx, lsn}}
	if len(preds) > 0 {
		seen := map[volume.PageIdx]bool{idx: true}
		err := v.rt.store.View(func(tx store.Tx) error {
			for _, p := range preds {
				if len(wants) > v.rt.cfg.MaxPrefetch || !p.Valid() || seen[p] {
					continue
				}
				seen[p] = true
				tag, _, plsn, found, err := v.lookup(tx, snap, p)
				if err != nil {
					return err
				}
				if found && tag == tagPending {
					wants = append(wants, pendingPage{p, plsn})
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read page %d of %s: %w", idx, snap.VID, err)
		}
	}
	got, err := v.fetchPages(ctx, snap, wants)
	if err != nil {
		return nil, err
	}
	if n := len(wants) - 1; n > 0 {
		v.oracleMu.Lock()
		for _, w := range wants[1:] {
			if _, ok := got[w.idx]; ok {
				v.prefetched[w.idx] = struct{}{}
				v.prefetchedN.Add(1)
			}
		}
		v.oracleMu.Unlock()
	}
	return got[idx], nil
}

// pendingPage is a pending page version: its index and local LSN.
type pendingPage struct {
	idx volume.PageIdx
	lsn volume.LSN
}

// fetchPages reads wants (pending at snap) in one ReadPages at
// snap.RemoteLSN and stores them (each only if still pending). Errors name
// the first page and the endpoints.
func (v *Volume) fetchPages(ctx context.Context, snap Snapshot, wants []pendingPage) (map[volume.PageIdx][]byte, error) {
	idx := wants[0].idx
	rpc, err := v.rt.client()
	if err != nil {
		return nil, fmt.Errorf("fetch page %d of %s: %w", idx, snap.VID, err)
	}
	idxs := make([]volume.PageIdx, len(wants))
	for i, w := range wants {
		idxs[i] = w.idx
	}
	v.roundTrips.Add(1)
	_, pages, err := rpc.ReadPages(ctx, snap.VID, snap.RemoteLSN, idxs, ReadOptions{Consistency: AtLeastLSN, MinLSN: snap.RemoteLSN})
	if err != nil {
		if connect.CodeOf(err) == connect.CodeOutOfRange {
			err = fmt.Errorf("%w: %w", ErrRemoteLSNGone, err)
		}
		return nil, fmt.Errorf("fetch page %d of %s at remote LSN %d from %v: %w", idx, snap.VID, snap.RemoteLSN, rpc.Endpoints(), err)
	}
	got := make(map[volume.PageIdx][]byte, len(pages))
	for _, p := range pages {
		if p.LSN > snap.RemoteLSN {
			return nil, fmt.Errorf("fetch page %d of %s at remote LSN %d: server sent version %d", p.Idx, snap.VID, snap.RemoteLSN, p.LSN)
		}
		got[p.Idx] = p.Data
	}
	for _, w := range wants {
		if _, ok := got[w.idx]; !ok {
			return nil, fmt.Errorf("fetch page %d of %s at remote LSN %d from %v: not in the response", w.idx, snap.VID, snap.RemoteLSN, rpc.Endpoints())
		}
	}
	v.fetched.Add(uint64(len(got)))
	err = v.rt.store.Update(func(tx store.Tx) error {
		for _, w := range wants {
			k := pageKey(snap.VID, w.idx, w.lsn)
			if cur := tx.Get(store.Pages, k); len(cur) != 1 || cur[0] != tagPending {
				continue // fetched meanwhile, or compacted away
			}
			if err := tx.Put(store.Pages, k, pageValue(got[w.idx])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store fetched page %d of %s: %w", idx, snap.VID, err)
	}
	return got, nil
}

// Writer is a local transaction on a volume: read-your-own-writes until
// Commit. It is safe for concurrent use.
type Writer struct {
	v         *Volume
	mu        sync.Mutex
	base      Snapshot
	pages     map[volume.PageIdx][]byte
	pageCount uint32
	pin       *pin
}

// Writer returns a writer based on v.Snapshot().
func (v *Volume) Writer() *Writer {
	v.mu.Lock()
	s := v.snapshotLocked()
	w := &Writer{v: v, base: s, pages: make(map[volume.PageIdx][]byte), pageCount: s.PageCount, pin: v.pinLocked(s)}
	v.mu.Unlock()
	watchPin(w, w.pin)
	return w
}

// Snapshot returns the writer's base.
func (w *Writer) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.base
}

// ReadPage returns idx as written by this writer, else at its base.
func (w *Writer) ReadPage(ctx context.Context, idx volume.PageIdx) ([]byte, error) {
	if err := checkIdx(idx); err != nil {
		return nil, err
	}
	w.mu.Lock()
	p, ok := w.pages[idx]
	base := w.base
	w.mu.Unlock()
	if ok {
		return append([]byte(nil), p...), nil
	}
	defer runtime.KeepAlive(w) // its pin keeps the versions it reads
	return w.v.readAt(ctx, base, idx)
}

// WritePage sets page idx (copied); len(page) must be 4096 and idx >= 1.
// Writing past the page count extends it to idx.
func (w *Writer) WritePage(idx volume.PageIdx, page []byte) error {
	if err := checkIdx(idx); err != nil {
		return err
	}
	if len(page) != volume.PageSize {
		return fmt.Errorf("%w: page %d has %d bytes, want %d", ErrInvalidPage, idx, len(page), volume.PageSize)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pages[idx] = append([]byte(nil), page...)
	if uint32(idx) > w.pageCount {
		w.pageCount = uint32(idx)
	}
	return nil
}

// SetPageCount sets the volume's page count at commit.
func (w *Writer) SetPageCount(n uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pageCount = n
}

// PageCount returns the page count the writer will commit.
func (w *Writer) PageCount() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pageCount
}

// Commit makes the writer's pages and page count the volume's next local
// snapshot, in one durable transaction, and returns it; the writer then
// continues on that snapshot. It fails with ErrConcurrentWrite when the
// base is no longer the latest local snapshot. A writer with nothing to
// commit returns its base.
func (w *Writer) Commit(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.vid != w.base.VID || v.state.LocalLSN != w.base.LocalLSN {
		return Snapshot{}, fmt.Errorf("%w: writer based on local LSN %d of %s, latest is %d of %s", ErrConcurrentWrite, w.base.LocalLSN, w.base.VID, v.state.LocalLSN, v.vid)
	}
	if len(w.pages) == 0 && w.pageCount == w.base.PageCount {
		return w.base, nil
	}
	st := v.state
	st.LocalLSN++
	st.PageCount = w.pageCount
	var g volume.PageSet
	err := v.rt.store.Update(func(tx store.Tx) error {
		for idx, p := range w.pages {
			g.Add(idx)
			if err := tx.Put(store.Pages, pageKey(v.vid, idx, st.LocalLSN), pageValue(p)); err != nil {
				return err
			}
		}
		c, err := encodeCommit(st.PageCount, g)
		if err != nil {
			return err
		}
		if err := tx.Put(store.Commits, commitKey(v.vid, st.LocalLSN), c); err != nil {
			return err
		}
		return putState(tx, v.vid, st)
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("commit %s local LSN %d: %w", v.vid, st.LocalLSN, err)
	}
	v.state = st
	v.kickSync()
	w.base = v.snapshotLocked()
	v.repinLocked(w.pin, w.base)
	w.pages = make(map[volume.PageIdx][]byte)
	return w.base, nil
}

func putState(tx store.Tx, vid volume.ID, st volState) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	return tx.Put(store.Volumes, vid[:], b)
}
