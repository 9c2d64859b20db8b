package flusher

import (
	"context"
	"errors"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// Cached views go stale once GC runs: with compaction a page version has
// two locations (its record's segment and a compacted segment), and GC
// deletes the older one as soon as no retained checkpoint names it. A view
// of a retained snapshot built before that GC round (a bucket view from an
// older checkpoint, a delta merged with an older base) can still point at
// the deleted location. Such a view is never wrong about a page's version,
// only about where it lives, so a read that finds an object missing forgets
// the volume's cached views and resolves the snapshot once more from fresh
// listings (which GC keeps consistent: deltas, then segments, then
// records, then checkpoints are deleted in that order).

// forgetViews drops every cached view, merged delta, delta and checkpoint
// of vid. Stored objects are immutable, so dropping is always safe; the
// next read lists and fetches again, and resolves checkpoints by listing
// their generations from then on (a rewritten checkpoint's generation 0
// names segments GC deletes).
func (r *Reader) forgetViews(vid volume.ID) {
	r.listGens.Add(vid, struct{}{})
	for _, k := range r.views.Keys() {
		if k.vid == vid {
			r.views.Remove(k)
		}
	}
	for _, c := range []interface {
		Keys() []recordKey
		Remove(recordKey) bool
	}{r.merged, r.deltas, r.ckpts, r.noDelta} {
		for _, k := range c.Keys() {
			if k.vid == vid {
				c.Remove(k)
			}
		}
	}
	for _, k := range r.coldServed.Keys() {
		if k.vid == vid {
			r.coldServed.Remove(k)
		}
	}
}

// retryStale runs read; if it fails because an object is missing, it
// forgets vid's cached views and runs read once more.
func (r *Reader) retryStale(ctx context.Context, vid volume.ID, read func() error) error {
	err := read()
	if err == nil || !errors.Is(err, objstore.ErrNotFound) || ctx.Err() != nil {
		return err
	}
	r.log.Info("object missing under a cached view; forgetting the volume's views and reading again", "vid", vid, "err", err)
	r.staleRetries.Add(1)
	r.forgetViews(vid)
	return read()
}

// StaleRetries returns how many reads found an object missing under a
// cached view (GC deleted a location a newer checkpoint generation or a
// newer view replaced) and read again from fresh listings.
func (r *Reader) StaleRetries() uint64 { return r.staleRetries.Load() }
