package edge

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// pageVersion is one page as of a snapshot: the version visible there
// (0: never written) and its bytes (nil for version 0).
type pageVersion struct {
	idx  volume.PageIdx
	ver  volume.LSN
	data []byte
}

// bucket reads flushed snapshots straight from the object store, through
// the flusher's Reader (ranged GETs, CRC-verified pages).
type bucket struct {
	r       *flusher.Reader
	refresh time.Duration

	mu   sync.Mutex
	vols map[volume.ID]*bucketVol
	sf   singleflight.Group
}

// bucketVol is what the bucket held of one volume when it was last
// listed. Records at or below flushed never change, so a view may be old
// and still answer every snapshot at or below its watermark exactly.
type bucketVol struct {
	flushed volume.LSN
	listed  time.Time
	read    func(ctx context.Context, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []pageVersion, error)
}

func newBucket(store objstore.Store, refresh time.Duration) (*bucket, error) {
	// The edge caches verified pages itself; the Reader keeps only a
	// little, plus its segment indexes and records.
	rc := flusher.DefaultReaderConfig()
	rc.PageCacheBytes = 1 << 20
	r, err := flusher.NewReader(store, rc)
	if err != nil {
		return nil, err
	}
	return &bucket{r: r, refresh: refresh, vols: map[volume.ID]*bucketVol{}}, nil
}

// view returns the volume's view when it covers lsn. Otherwise it starts
// a re-listing in the background (at most one per volume per refresh
// period) and returns nil: this read goes to the cluster.
func (b *bucket) view(bg context.Context, vid volume.ID, lsn volume.LSN) *bucketVol {
	b.mu.Lock()
	v := b.vols[vid]
	b.mu.Unlock()
	if v != nil && v.read != nil && lsn <= v.flushed {
		return v
	}
	if v == nil || time.Since(v.listed) >= b.refresh {
		b.kick(bg, vid)
	}
	return nil
}

// kick re-lists vid's log records in the background, once at a time. The
// listing ends with bg (the edge's lifetime) or after 30s.
func (b *bucket) kick(bg context.Context, vid volume.ID) {
	if bg.Err() != nil {
		return
	}
	go func() {
		_, _, _ = b.sf.Do(vid.String(), func() (any, error) {
			ctx, cancel := context.WithTimeout(bg, 30*time.Second)
			defer cancel()
			h, err := b.r.History(ctx, vid)
			now := time.Now()
			b.mu.Lock()
			defer b.mu.Unlock()
			old := b.vols[vid]
			if err != nil {
				if old != nil {
					old.listed = now // try again a period later
				} else {
					b.vols[vid] = &bucketVol{listed: now, read: nil}
				}
				return nil, err
			}
			if old != nil && old.flushed > h.Flushed {
				old.listed = now // never go back (a racing older listing)
				return nil, nil
			}
			b.vols[vid] = &bucketVol{flushed: h.Flushed, listed: now, read: func(ctx context.Context, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []pageVersion, error) {
				snap, got, err := b.r.ReadSnapshotAt(ctx, h, lsn, idxs)
				if err != nil {
					return volume.Snapshot{}, nil, err
				}
				out := make([]pageVersion, len(got))
				for i, p := range got {
					out[i] = pageVersion{idx: p.Idx, ver: p.LSN, data: p.Data}
				}
				return snap, out, nil
			}}
			return nil, nil
		})
	}()
}
