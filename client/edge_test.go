package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/edge"
	"github.com/graft-cluster/graft/volume"
)

// startEdge serves an in-process edge in front of c, until the test ends.
func startEdge(t *testing.T, c *clustertest.Cluster) string {
	t.Helper()
	cfg := edge.DefaultConfig()
	cfg.Upstream = c.Endpoints()
	cfg.UpstreamAttemptTimeout = 5 * time.Second
	e, err := edge.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("edge serve: %v", err)
		}
		_ = e.Close()
	})
	return "http://" + ln.Addr().String()
}

func TestVolume_ThroughEdge(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	edgeURL := startEdge(t, c)
	vid := volume.MustNewID()
	a := mustVolume(t, openRT(t, client.Config{Endpoints: []string{edgeURL}}), vid)
	b := mustVolume(t, openRT(t, client.Config{Endpoints: []string{edgeURL}, Oracle: client.NoPrefetch}), vid)
	pages := map[volume.PageIdx]byte{}
	for i := 1; i <= 12; i++ {
		pages[volume.PageIdx(i)] = byte(0x40 + i)
	}
	write(t, a, pages)
	if res, err := a.Push(ctx); err != nil || res.RemoteLSN != 1 {
		t.Fatalf("push through the edge: %+v, %v", res, err)
	}
	if err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	r := b.Reader()
	for _, idx := range []volume.PageIdx{2, 5, 11} {
		expectPage(t, r, idx, byte(0x40+idx))
	}
	if st := b.Stats(); st.Fetched != 3 || st.Pending != 9 {
		t.Fatalf("b through the edge: %+v", st)
	}
	// A stale push through the edge is rejected the same way.
	write(t, a, map[volume.PageIdx]byte{1: 0xaa})
	write(t, b, map[volume.PageIdx]byte{1: 0xbb})
	if _, err := a.Push(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Push(ctx); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("stale push through the edge: %v", err)
	}
	if err := b.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	expectPage(t, b.Reader(), 1, 0xaa)
	expectPage(t, r, 1, 0x41) // the pinned reader still reads its snapshot
}
