package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// seeded pushes pages 1..n (page i filled with byte i) from a writer
// replica and returns a fresh replica through gate g, pulled.
func seeded(t *testing.T, c *clustertest.Cluster, g *gate, n int, cfg client.Config) (*client.Volume, volume.ID) {
	t.Helper()
	ctx := ctxT(t)
	vid := volume.MustNewID()
	a := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
	for start := 1; start <= n; start += 200 {
		pages := map[volume.PageIdx]byte{}
		for i := start; i < start+200 && i <= n; i++ {
			pages[volume.PageIdx(i)] = byte(i)
		}
		write(t, a, pages)
		if _, err := a.Push(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Endpoints = []string{g.URL()}
	cfg.Options = fastFail
	b := mustVolume(t, openRT(t, cfg), vid)
	if err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	return b, vid
}

func TestReader_ConcurrentReadsFetchOnce(t *testing.T) {
	c := clustertest.Start(t, 3)
	g := newGate(t, c.Endpoint(0))
	b, _ := seeded(t, c, g, 10, client.Config{Oracle: client.NoPrefetch})
	g.delayReads.Store(int64(300 * time.Millisecond))
	r := b.Reader()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := r.ReadPage(context.Background(), 4)
			if err == nil && p[0] != 4 {
				err = context.Canceled
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Stats(); st.RoundTrips != 1 || st.Fetched != 1 || g.reads.Load() != 1 {
		t.Fatalf("8 concurrent reads of one pending page: %+v, %d ReadPages at the proxy", st, g.reads.Load())
	}
}

func TestReader_Unreachable(t *testing.T) {
	c := clustertest.Start(t, 3)
	g := newGate(t, c.Endpoint(0))
	b, _ := seeded(t, c, g, 10, client.Config{Oracle: client.NoPrefetch})
	ctx := ctxT(t)
	expectPage(t, b.Reader(), 2, 2) // fetched while up
	g.down()
	r := b.Reader()
	_, err := r.ReadPage(ctx, 5)
	if err == nil || !strings.Contains(err.Error(), "page 5") || !strings.Contains(err.Error(), g.URL()) {
		t.Fatalf("read of a pending page while unreachable: %v (want page 5 and %s named)", err, g.URL())
	}
	expectPage(t, r, 2, 2)   // present pages still read
	expectPage(t, r, 900, 0) // never written: zeros, no fetch
	write(t, b, map[volume.PageIdx]byte{3: 0x33})
	expectPage(t, b.Reader(), 3, 0x33) // local commits still work
	g.up()
	expectPage(t, r, 5, 5)
}

func TestReader_Prefetch(t *testing.T) {
	c := clustertest.Start(t, 3)
	g := newGate(t, c.Endpoint(0))
	b, _ := seeded(t, c, g, 30, client.Config{Oracle: func() client.Oracle { return seqOracle{} }, MaxPrefetch: 4})
	r := b.Reader()
	for i := 1; i <= 20; i++ {
		expectPage(t, r, volume.PageIdx(i), byte(i))
	}
	st := b.Stats()
	// Misses at 1, 6, 11, 16, each with the 4 next pages.
	if st.RoundTrips != 4 || st.Fetched != 20 || st.Prefetched != 16 || st.PrefetchHits != 16 || st.Misses != 4 || st.Pending != 10 {
		t.Fatalf("sequential read of 20 pages, prefetch 4: %+v", st)
	}
	// Predictions that are not pending are not fetched: read 20 (present)
	// then 21 (miss), predicting 22..25; 23 is made local first.
	w := b.Writer()
	if err := w.WritePage(23, page(0x23)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = b.Reader()
	expectPage(t, r, 21, 21)
	if st2 := b.Stats(); st2.Fetched-st.Fetched != 4 || st2.Prefetched-st.Prefetched != 3 {
		t.Fatalf("prefetch skips local pages: before %+v after %+v", st, st2)
	}
}

func TestReader_RemoteLSNGone(t *testing.T) {
	c := clustertest.Start(t, 3)
	g := newGate(t, c.Endpoint(0))
	b, _ := seeded(t, c, g, 4, client.Config{Oracle: client.NoPrefetch})
	g.outOfRange.Store(true)
	_, err := b.Reader().ReadPage(ctxT(t), 2)
	if !errors.Is(err, client.ErrRemoteLSNGone) || !strings.Contains(err.Error(), "page 2") {
		t.Fatalf("read below the cluster's horizon: %v", err)
	}
}

// A read that joins another read's fetch is not failed by that read's
// ctx ending.
func TestReader_JoinedFetchOutlivesCaller(t *testing.T) {
	c := clustertest.Start(t, 3)
	g := newGate(t, c.Endpoint(0))
	b, _ := seeded(t, c, g, 4, client.Config{Oracle: client.NoPrefetch})
	g.delayReads.Store(int64(400 * time.Millisecond))
	r := b.Reader()
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := r.ReadPage(ctx1, 3)
		first <- err
	}()
	waitFor(t, 10*time.Second, "the first fetch to reach the cluster", func() bool { return g.reads.Load() == 1 })
	second := make(chan error, 1)
	go func() {
		p, err := r.ReadPage(context.Background(), 3)
		if err == nil && p[0] != 3 {
			err = errors.New("wrong bytes")
		}
		second <- err
	}()
	waitFor(t, 10*time.Second, "the second read to join", func() bool { return b.Stats().Misses == 2 })
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first read: %v, want canceled", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second read failed with the first one's ctx: %v", err)
	}
}

// Fork fetches the pages it lacks in batches, not one round trip each.
func TestVolume_ForkFetchesInBatches(t *testing.T) {
	c := clustertest.Start(t, 3)
	g := newGate(t, c.Endpoint(0))
	b, vid := seeded(t, c, g, 300, client.Config{Oracle: client.NoPrefetch})
	ctx := ctxT(t)
	expectPage(t, b.Reader(), 7, 7)
	nvid, err := b.Fork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 1 read, then 299 pending pages in batches of 256.
	if st := b.Stats(); st.RoundTrips != 3 || st.Fetched != 300 {
		t.Fatalf("fork of 300 pages, 1 local: %+v", st)
	}
	f := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), nvid)
	if err := f.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	if s := f.Snapshot(); s.PageCount != 300 || nvid == vid {
		t.Fatalf("fork: %+v", s)
	}
	for _, idx := range []volume.PageIdx{1, 7, 256, 257, 300} {
		expectPage(t, f.Reader(), idx, byte(idx))
	}
}
