package client_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// Must-show 3 of issue 10, through the real replica and its default oracle
// (Leap) against a three-node cluster: a sequential scan of 10,000 pages on
// a cold replica takes at most one round trip per 6 pages and leaves at
// most 10% of the fetched pages unread; uniform random reads overfetch at
// most 5%. Overfetch is fetched-and-never-read / fetched, where
// fetched-and-never-read is Prefetched - PrefetchHits.
func TestReader_PrefetchMeasured(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 pages to a cluster")
	}
	const pages = 10000
	c := clustertest.Start(t, 3)
	c.WaitLeader()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute) // 40 commits of 256 pages, on a loaded machine
	defer cancel()
	vid := volume.MustNewID()
	rpc := c.Client()
	var head volume.Snapshot
	for start := 1; start <= pages; start += 256 {
		var writes []volume.PageWrite
		for i := start; i < start+256 && i <= pages; i++ {
			writes = append(writes, volume.PageWrite{Idx: volume.PageIdx(i), Data: page(byte(i))})
		}
		var err error
		if head, err = rpc.Commit(ctx, vid, head.LSN, pages, writes); err != nil {
			t.Fatal(err)
		}
	}

	// cold opens a new replica of vid (its own in-memory store), pulled,
	// and the count of ReadPages requests its HTTP client sends.
	cold := func(t *testing.T) (*client.Volume, *atomic.Int64) {
		ctx := ctxT(t)
		rt := &readCounter{next: client.DefaultHTTPClient().Transport}
		v := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints(), HTTPClient: &http.Client{Transport: rt}}), vid)
		if err := v.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		if st := v.Stats(); st.Pending != pages || st.Present != 0 {
			t.Fatalf("cold replica: %+v, want %d pages pending, none present", st, pages)
		}
		return v, &rt.reads
	}
	overfetch := func(st client.Stats) (uint64, float64) {
		never := st.Prefetched - st.PrefetchHits
		if st.Fetched == 0 {
			return never, 0
		}
		return never, float64(never) / float64(st.Fetched)
	}

	t.Run("sequential scan", func(t *testing.T) {
		scan, sent := cold(t)
		r := scan.Reader()
		for i := 1; i <= pages; i++ {
			expectPage(t, r, volume.PageIdx(i), byte(i))
		}
		st := scan.Stats()
		never, ratio := overfetch(st)
		t.Logf("sequential scan of %d pages: %d round trips (1 per %.1f pages), %d fetched, %d prefetched, %d prefetch hits, %d fetched and never read (%.2f%%)",
			pages, st.RoundTrips, float64(pages)/float64(st.RoundTrips), st.Fetched, st.Prefetched, st.PrefetchHits, never, 100*ratio)
		if got := uint64(sent.Load()); got != st.RoundTrips {
			t.Errorf("%d ReadPages requests sent, Stats says %d round trips", got, st.RoundTrips)
		}
		if st.RoundTrips*6 > pages {
			t.Errorf("%d round trips for %d pages, want <= %d", st.RoundTrips, pages, pages/6)
		}
		if st.Fetched < pages || never*10 > st.Fetched {
			t.Errorf("fetched %d pages, %d never read: want >= %d fetched and <= 10%% never read", st.Fetched, never, pages)
		}
	})

	t.Run("uniform random reads", func(t *testing.T) {
		v, sent := cold(t)
		r := v.Reader()
		rng := rand.New(rand.NewPCG(1, 2))
		read := map[volume.PageIdx]bool{}
		const reads = 2000
		for range reads {
			idx := volume.PageIdx(1 + rng.IntN(pages))
			read[idx] = true
			expectPage(t, r, idx, byte(idx))
		}
		st := v.Stats()
		never, ratio := overfetch(st)
		t.Logf("uniform random, %d reads (%d distinct pages): %d round trips, %d fetched, %d prefetched, %d prefetch hits, %d fetched and never read (overfetch %.2f%%)",
			reads, len(read), st.RoundTrips, st.Fetched, st.Prefetched, st.PrefetchHits, never, 100*ratio)
		if got := uint64(sent.Load()); got != st.RoundTrips {
			t.Errorf("%d ReadPages requests sent, Stats says %d round trips", got, st.RoundTrips)
		}
		if st.Fetched < uint64(len(read)) {
			t.Errorf("fetched %d pages for %d distinct pages read", st.Fetched, len(read))
		}
		if never*20 > st.Fetched {
			t.Errorf("overfetch %.2f%% (%d of %d fetched never read), want <= 5%%", 100*ratio, never, st.Fetched)
		}
	})
}

// readCounter counts the ReadPages requests sent through it.
type readCounter struct {
	next  http.RoundTripper
	reads atomic.Int64
}

func (rc *readCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/ReadPages") {
		rc.reads.Add(1)
	}
	return rc.next.RoundTrip(r)
}
