package edge

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/volume"
)

// TestEdge_ReadPagesProperty commits at random to a real three-node
// cluster, flushing (which trims its buffer) all along, while readers read
// random pages at random snapshots through two edges (one reading flushed
// pages from the bucket, one with a cache small enough to evict all the
// time, over a disk tier), and walkers read forward through the snapshots (so
// pages are resolved from older resolutions and grafts), and compare every answer, byte for byte and version for version,
// with the cluster's answer for the same snapshot. Head-relative
// linearizable reads must also see every commit acked before they began.
func TestEdge_ReadPagesProperty(t *testing.T) {
	url := s3test.URL(t)
	c := clustertest.Start(t, 3, withStore(url), patientRaft)
	ctx := testCtx(t, 3*time.Minute)
	direct := c.Client()
	edges := []*testEdge{
		startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints(); cfg.ObjectStore = url }),
		startEdge(t, func(cfg *Config) {
			cfg.Upstream = c.Endpoints()
			cfg.CacheBytes = 96 << 10 // evicts all the time: pages come back from the disk tier
			cfg.CacheDir, cfg.DiskBytes = t.TempDir(), 4<<20
		}),
	}
	clients := []*client.Client{edges[0].client(t), edges[1].client(t)}

	const vols, commits, maxPages = 3, 30, 12
	vids := make([]volume.ID, vols)
	heads := make([]atomic.Uint64, vols) // acked heads
	for v := range vids {
		vids[v] = volume.MustNewID()
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 64)
	fail := func(format string, args ...any) {
		select {
		case errc <- errorf(format, args...):
		default:
		}
	}

	// Writer: random commits, half of them through an edge.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(stop)
		rng := rand.New(rand.NewPCG(1, 2))
		for n := 0; n < vols*commits; n++ {
			v := n % vols
			base := volume.LSN(heads[v].Load())
			lsn := base + 1
			count := uint32(6 + rng.IntN(maxPages-5))
			var w []volume.PageWrite
			for idx := volume.PageIdx(1); uint32(idx) <= count; idx++ {
				if rng.IntN(3) == 0 {
					w = append(w, volume.PageWrite{Idx: idx, Data: fill(v, lsn, idx)})
				}
			}
			cl := direct
			if rng.IntN(2) == 0 {
				cl = clients[rng.IntN(2)]
			}
			snap, err := cl.Commit(ctx, vids[v], base, count, w)
			for err != nil && transient(err) && ctx.Err() == nil {
				// A leader lost under load: the same content again is
				// deduplicated if the first try landed.
				snap, err = cl.Commit(ctx, vids[v], base, count, w)
			}
			if err != nil {
				fail("commit %d on %s: %v", lsn, vids[v], err)
				return
			}
			if snap.LSN != lsn {
				fail("commit on base %d acked lsn %d", base, snap.LSN)
				return
			}
			heads[v].Store(uint64(lsn))
		}
	}()
	// Flusher: the buffer is trimmed underneath the readers all along.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			if err := direct.Flush(ctx); err != nil && ctx.Err() == nil && !transient(err) {
				fail("flush: %v", err)
				return
			}
		}
	}()
	var reads, headReads, walks, skipped atomic.Int64
	// readAndCompare reads through edge e and compares the answer with the
	// cluster's for the same snapshot; false: stop (failed).
	readAndCompare := func(e, v int, lsn volume.LSN, idxs []volume.PageIdx, ro client.ReadOptions) bool {
		h := heads[v].Load()
		snap, got, err := clients[e].ReadPages(ctx, vids[v], lsn, idxs, ro)
		if err != nil && (transient(err) || (ro.Consistency == client.Stale && connect.CodeOf(err) == connect.CodeOutOfRange)) {
			// Unavailable under load; or a stale read of a snapshot
			// the answering node has not applied yet, as the
			// cluster answers it.
			skipped.Add(1)
			return true
		}
		if err != nil {
			fail("edge %d read %s@%d %v: %v", e, vids[v], lsn, idxs, err)
			return false
		}
		if lsn == 0 {
			headReads.Add(1)
			if uint64(snap.LSN) < h {
				fail("edge %d linearizable head read of %s returned lsn %d, below the acked head %d", e, vids[v], snap.LSN, h)
				return false
			}
		} else if snap.LSN != lsn {
			fail("edge %d read at %d answered snapshot %d", e, lsn, snap.LSN)
			return false
		}
		wsnap, want, err := direct.ReadPages(ctx, vids[v], snap.LSN, idxs, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: snap.LSN})
		for err != nil && transient(err) && ctx.Err() == nil {
			wsnap, want, err = direct.ReadPages(ctx, vids[v], snap.LSN, idxs, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: snap.LSN})
		}
		if err != nil {
			fail("cluster read %s@%d: %v", vids[v], snap.LSN, err)
			return false
		}
		if wsnap != snap {
			fail("edge %d snapshot %+v, cluster %+v", e, snap, wsnap)
			return false
		}
		for i := range want {
			if got[i].Idx != want[i].Idx || got[i].LSN != want[i].LSN || !bytes.Equal(got[i].Data, want[i].Data) {
				fail("edge %d %s@%d page %d: version %d (%x...), cluster version %d (%x...)",
					e, vids[v], snap.LSN, want[i].Idx, got[i].LSN, got[i].Data[:4], want[i].LSN, want[i].Data[:4])
				return false
			}
		}
		reads.Add(1)
		return true
	}
	randomPages := func(rng *rand.Rand, n int) []volume.PageIdx {
		var idxs []volume.PageIdx
		for _, p := range rng.Perm(maxPages + 2)[:1+rng.IntN(n)] {
			idxs = append(idxs, volume.PageIdx(p+1))
		}
		return idxs
	}
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := rng.IntN(vols)
				h := heads[v].Load()
				if h == 0 {
					continue
				}
				idxs := randomPages(rng, 5)
				var lsn volume.LSN
				ro := client.ReadOptions{}
				switch rng.IntN(4) {
				case 0: // head, linearizable
				case 1:
					lsn = volume.LSN(1 + rng.Uint64N(h))
					ro.Consistency = client.Stale
				default:
					lsn = volume.LSN(1 + rng.Uint64N(h))
				}
				if !readAndCompare(rng.IntN(2), v, lsn, idxs, ro) {
					return
				}
			}
		}()
	}
	// Walkers read forward through the snapshots (as a replica following
	// the head does), so the edges resolve each new snapshot from an older
	// one's resolutions and the graft between (resolveByGraft).
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			e := r % 2
			cursor := make([]uint64, vols)
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := rng.IntN(vols)
				cursor[v] = min(heads[v].Load(), cursor[v]+1+rng.Uint64N(3))
				if cursor[v] == 0 {
					continue
				}
				for range 1 + rng.IntN(3) { // a few reads of each snapshot
					if !readAndCompare(e, v, volume.LSN(cursor[v]), randomPages(rng, 8), client.ReadOptions{}) {
						return
					}
				}
				walks.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if reads.Load() < 50 || headReads.Load() == 0 {
		t.Errorf("only %d reads (%d head-relative) compared", reads.Load(), headReads.Load())
	}
	t.Logf("%d reads compared (%d head-relative, %d forward snapshot steps, %d skipped: unavailable under load or stale); edge 0 pages: cache %.0f upstream %.0f bucket %.0f, resolved by graft %.0f; edge 1: cache %.0f upstream %.0f, resolved by graft %.0f, evictions %.0f",
		reads.Load(), headReads.Load(), walks.Load(), skipped.Load(), edges[0].pages(sourceCache), edges[0].pages(sourceUpstream), edges[0].pages(sourceBucket),
		testutilCounter(edges[0].metrics.graftResolved), edges[1].pages(sourceCache), edges[1].pages(sourceUpstream),
		testutilCounter(edges[1].metrics.graftResolved), testutilCounter(edges[1].metrics.evictions))
	if testutilCounter(edges[0].metrics.graftResolved) == 0 {
		t.Errorf("edge 0 resolved no page from a graft: the forward walks did not exercise it")
	}
	if edges[0].pages(sourceBucket) == 0 {
		t.Errorf("edge with an object store served no page from the bucket")
	}
}
