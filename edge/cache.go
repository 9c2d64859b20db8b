package edge

import (
	"fmt"
	"runtime"

	"github.com/maypok86/otter/v2"

	"github.com/graft-cluster/graft/volume"
)

// pageKey names the bytes of one page version: page idx of volume vid as
// written by the commit at ver. A version never changes.
type pageKey struct {
	vid volume.ID
	idx volume.PageIdx
	ver volume.LSN
}

// pageKeyOf returns the page cache's key of version ver of page idx.
func pageKeyOf(vid volume.ID, idx volume.PageIdx, ver volume.LSN) pageKey {
	return pageKey{vid: vid, idx: idx, ver: plantedKeyVer(ver)} // planted bug call site (planted_*.go)
}

// metaKey names a fact about snapshot lsn of vid: with idx > 0, the
// version of page idx visible at lsn (0: never written, or beyond the
// page count); with idx 0, the snapshot's page count. A snapshot never
// changes, so neither does either fact.
type metaKey struct {
	vid volume.ID
	lsn volume.LSN
	idx volume.PageIdx
}

// Per-entry overheads counted in the weights: the key, the value header,
// otter's node and its map slot. Measured on amd64 (Go 1.26, otter 2.4.0):
// 119 bytes besides the 4096 of a page entry, 103 bytes a metadata entry.
const (
	pageEntryOverhead = 128
	metaEntryWeight   = 112
)

// otterBurstEntries is how many sets otter may hold in its write buffer
// before evicting for them (128 x parallelism rounded up to a power of
// two, otter 2.4.0's maxWriteBufferSize): the page cache may overshoot its
// weight by that many entries for a moment (otter issue #171). The page
// cache's bound is lowered by it, so the overshoot stays within
// CacheBytes.
func otterBurstEntries() int64 {
	p := min(runtime.GOMAXPROCS(0), runtime.NumCPU())
	r := 1
	for r < p {
		r <<= 1
	}
	return int64(128 * r)
}

// pageCacheBytes is the page cache's bound for CacheBytes: what the
// metadata and range caches leave, less otter's write-buffer burst (at
// most 1/8 of it).
func pageCacheBytes(cacheBytes int64) int64 {
	rest := cacheBytes - cacheBytes/16 - cacheBytes/64
	burst := min(otterBurstEntries()*(volume.PageSize+pageEntryOverhead), rest/8)
	return rest - burst
}

// PageCacheCapacity is how many page versions the in-memory cache of an
// edge with CacheBytes holds when full.
func PageCacheCapacity(cacheBytes int64) int {
	return int(pageCacheBytes(cacheBytes) / (volume.PageSize + pageEntryOverhead))
}

// MemoryLimit is the Go memory limit (runtime/debug.SetMemoryLimit) that
// `graft edge` sets by default for a cache bound: the cache, a quarter of
// it as room for the garbage collector, and a fixed 48 MiB for the
// runtime, connections and requests in flight. Without a limit the heap of
// a full cache grows to about twice the cache before a collection (GOGC
// 100).
func MemoryLimit(cacheBytes int64) int64 {
	return cacheBytes + cacheBytes/4 + 48<<20
}

func (e *Edge) newCaches() error {
	metaBytes := e.cfg.CacheBytes / 16
	rangeBytes := e.cfg.CacheBytes / 64
	pageBytes := pageCacheBytes(e.cfg.CacheBytes)
	var err error
	e.pages, err = otter.New(&otter.Options[pageKey, []byte]{
		MaximumWeight: uint64(pageBytes),
		Weigher:       func(_ pageKey, v []byte) uint32 { return uint32(len(v) + pageEntryOverhead) },
		OnDeletion:    e.onDeletion,
	})
	if err != nil {
		return fmt.Errorf("%w: page cache: %w", ErrConfig, err)
	}
	e.meta, err = otter.New(&otter.Options[metaKey, uint64]{
		MaximumWeight: uint64(metaBytes),
		Weigher:       func(metaKey, uint64) uint32 { return metaEntryWeight },
		OnDeletion:    func(ev otter.DeletionEvent[metaKey, uint64]) { e.countEviction(ev.Cause) },
	})
	if err != nil {
		return fmt.Errorf("%w: metadata cache: %w", ErrConfig, err)
	}
	e.ranges, err = otter.New(&otter.Options[rangeKey, rangeVal]{
		MaximumWeight: uint64(rangeBytes),
		Weigher:       rangeWeight,
		OnDeletion:    func(ev otter.DeletionEvent[rangeKey, rangeVal]) { e.countEviction(ev.Cause) },
	})
	if err != nil {
		return fmt.Errorf("%w: range cache: %w", ErrConfig, err)
	}
	// One entry per volume (about 100 bytes each): a bound on count is enough.
	if e.heads, err = otter.New(&otter.Options[volume.ID, volume.LSN]{MaximumSize: 1 << 16}); err != nil {
		return fmt.Errorf("%w: head cache: %w", ErrConfig, err)
	}
	if e.recent, err = otter.New(&otter.Options[volume.ID, *recentSnaps]{MaximumSize: 1 << 14}); err != nil {
		return fmt.Errorf("%w: recent snapshot cache: %w", ErrConfig, err)
	}
	return nil
}

func (e *Edge) onDeletion(ev otter.DeletionEvent[pageKey, []byte]) { e.countEviction(ev.Cause) }

func (e *Edge) countEviction(c otter.DeletionCause) {
	if c.IsEviction() && e.metrics != nil {
		e.metrics.evictions.Inc()
	}
}
