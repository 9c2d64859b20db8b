package client_test

import (
	"bytes"

	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// numbered is page idx of the seeded volume: its index in every 8 bytes.
func numbered(idx volume.PageIdx) []byte {
	return bytes.Repeat(binary.BigEndian.AppendUint64(nil, uint64(idx)), volume.PageSize/8)
}

// The default (Leap) oracle on a cold replica of a 10,000-page volume: a
// sequential scan needs at most 1/6 as many round trips as pages and
// fetches at most 10% pages never read; uniform random reads overfetch at
// most 5%.
func TestReader_PrefetchLeapScan(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10,000 pages")
	}
	const n = 10000
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	vid := volume.MustNewID()
	rpc := c.Client()
	var lsn volume.LSN
	for start := 1; start <= n; start += 250 {
		var pages []volume.PageWrite
		for i := start; i < start+250 && i <= n; i++ {
			pages = append(pages, volume.PageWrite{Idx: volume.PageIdx(i), Data: numbered(volume.PageIdx(i))})
		}
		s, err := rpc.Commit(ctx, vid, lsn, n, pages)
		if err != nil {
			t.Fatal(err)
		}
		lsn = s.LSN
	}
	check := func(r *client.Reader, idx volume.PageIdx) {
		t.Helper()
		p, err := r.ReadPage(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, numbered(idx)) {
			t.Fatalf("page %d: wrong bytes", idx)
		}
	}
	cold := func() *client.Volume {
		v := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
		if err := v.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("sequential", func(t *testing.T) {
		v := cold()
		r := v.Reader()
		for i := 1; i <= n; i++ {
			check(r, volume.PageIdx(i))
		}
		st := v.Stats()
		unread := st.Prefetched - st.PrefetchHits
		t.Logf("sequential scan of %d pages: %d round trips (1/%.1f), %d fetched, %d prefetched, %d prefetched and never read (%.2f%%)",
			n, st.RoundTrips, float64(n)/float64(st.RoundTrips), st.Fetched, st.Prefetched, unread, 100*float64(unread)/float64(st.Fetched))
		if st.RoundTrips*6 > n || unread*10 > st.Fetched || st.Fetched < n {
			t.Fatalf("sequential scan: %+v", st)
		}
	})
	t.Run("uniform random", func(t *testing.T) {
		v := cold()
		r := v.Reader()
		rng := rand.New(rand.NewPCG(1, 2))
		read := map[volume.PageIdx]bool{}
		for range 2000 {
			idx := volume.PageIdx(1 + rng.IntN(n))
			read[idx] = true
			check(r, idx)
		}
		st := v.Stats()
		unread := st.Prefetched - st.PrefetchHits
		t.Logf("2000 uniform random reads (%d distinct pages): %d round trips, %d fetched, %d prefetched, %d never read (%.2f%% overfetch)",
			len(read), st.RoundTrips, st.Fetched, st.Prefetched, unread, 100*float64(unread)/float64(st.Fetched))
		if unread*20 > st.Fetched {
			t.Fatalf("uniform random: %+v", st)
		}
	})
}
