package edge

import (
	"fmt"

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

// Per-entry overheads counted in the weights: the key, the value header
// and otter's node (about 100 bytes); an estimate, so the bound holds
// roughly (otter issue #171: a burst of sets may overshoot it briefly).
const (
	pageEntryOverhead = 128
	metaEntryWeight   = 96
)

func (e *Edge) newCaches() error {
	metaBytes := e.cfg.CacheBytes / 16
	rangeBytes := e.cfg.CacheBytes / 64
	pageBytes := e.cfg.CacheBytes - metaBytes - rangeBytes
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
