package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// page returns a page filled with b.
func page(b byte) []byte { return bytes.Repeat([]byte{b}, volume.PageSize) }

func openRT(tb testing.TB, cfg client.Config) *client.Runtime {
	tb.Helper()
	rt, err := client.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rt.Close() })
	return rt
}

func mustVolume(tb testing.TB, rt *client.Runtime, vid volume.ID) *client.Volume {
	tb.Helper()
	v, err := rt.Volume(context.Background(), vid)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func write(tb testing.TB, v *client.Volume, pages map[volume.PageIdx]byte) client.Snapshot {
	tb.Helper()
	w := v.Writer()
	for idx, b := range pages {
		if err := w.WritePage(idx, page(b)); err != nil {
			tb.Fatal(err)
		}
	}
	s, err := w.Commit(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func expectPage(tb testing.TB, r interface {
	ReadPage(context.Context, volume.PageIdx) ([]byte, error)
}, idx volume.PageIdx, b byte) {
	tb.Helper()
	got, err := r.ReadPage(context.Background(), idx)
	if err != nil {
		tb.Fatalf("read page %d: %v", idx, err)
	}
	if !bytes.Equal(got, page(b)) {
		tb.Fatalf("page %d: got %x..., want %x", idx, got[:4], b)
	}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestVolume_PushPullLazyRead(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	vid := volume.MustNewID()
	a := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints(), Oracle: client.NoPrefetch}), vid)
	b := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints(), Oracle: client.NoPrefetch}), vid)

	pages := map[volume.PageIdx]byte{}
	for i := 1; i <= 20; i++ {
		pages[volume.PageIdx(i)] = byte(i)
	}
	s := write(t, a, pages)
	if s.LocalLSN != 1 || s.RemoteLSN != 0 || s.PageCount != 20 {
		t.Fatalf("after commit: %+v", s)
	}
	expectPage(t, a.Reader(), 7, 7)
	res, err := a.Push(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pushed || res.RemoteLSN != 1 || res.Pages != 20 {
		t.Fatalf("push: %+v", res)
	}
	if err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.RemoteLSN != 1 || s.PageCount != 20 {
		t.Fatalf("b after pull: %+v", s)
	}
	if st := b.Stats(); st.Pending != 20 || st.Fetched != 0 {
		t.Fatalf("b stats after pull: %+v", st)
	}
	r := b.Reader()
	for _, idx := range []volume.PageIdx{3, 9, 15} {
		expectPage(t, r, idx, byte(idx))
		expectPage(t, r, idx, byte(idx)) // second read is local
	}
	expectPage(t, r, 500, 0) // never written: zeros, no fetch
	st := b.Stats()
	if st.Fetched != 3 || st.RoundTrips != 3 || st.Present != 3 || st.Pending != 17 {
		t.Fatalf("b stats after reads: %+v", st)
	}
}

func TestVolume_RejectedPushResolutions(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	for _, how := range []string{"reset", "replay", "fork"} {
		t.Run(how, func(t *testing.T) {
			vid := volume.MustNewID()
			a := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
			b := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
			write(t, a, map[volume.PageIdx]byte{1: 1, 2: 1})
			if _, err := a.Push(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Pull(ctx); err != nil {
				t.Fatal(err)
			}
			write(t, a, map[volume.PageIdx]byte{1: 0xa})
			write(t, b, map[volume.PageIdx]byte{2: 0xb, 3: 0xb})
			if _, err := a.Push(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := b.Push(ctx)
			if !errors.Is(err, client.ErrRejected) || b.Status() != client.StatusRejectedCommit {
				t.Fatalf("second push: %v, status %v", err, b.Status())
			}
			expectPage(t, b.Reader(), 2, 0xb) // local commits intact
			switch how {
			case "reset":
				if err := b.Reset(ctx); err != nil {
					t.Fatal(err)
				}
				r := b.Reader()
				expectPage(t, r, 1, 0xa)
				expectPage(t, r, 2, 1)
				expectPage(t, r, 3, 0)
			case "replay":
				err := b.Replay(ctx, func(w *client.Writer) error {
					return errors.Join(w.WritePage(2, page(0xb)), w.WritePage(3, page(0xb)))
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Pull(ctx); err != nil {
					t.Fatal(err)
				}
				for _, r := range []*client.Reader{a.Reader(), b.Reader()} {
					expectPage(t, r, 1, 0xa)
					expectPage(t, r, 2, 0xb)
					expectPage(t, r, 3, 0xb)
				}
			case "fork":
				nvid, err := b.Fork(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if b.VID() != nvid || nvid == vid {
					t.Fatalf("fork: vid %s, new %s", b.VID(), nvid)
				}
				expectPage(t, b.Reader(), 1, 1)
				expectPage(t, b.Reader(), 2, 0xb)
				// The fork is on the cluster: a third replica reads it.
				f := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), nvid)
				if err := f.Pull(ctx); err != nil {
					t.Fatal(err)
				}
				expectPage(t, f.Reader(), 1, 1)
				expectPage(t, f.Reader(), 2, 0xb)
				expectPage(t, f.Reader(), 3, 0xb)
				// The original volume is A's.
				expectPage(t, a.Reader(), 1, 0xa)
				expectPage(t, a.Reader(), 2, 1)
			}
			if b.Status() != client.StatusOk {
				t.Fatalf("status after %s: %v", how, b.Status())
			}
		})
	}
}
