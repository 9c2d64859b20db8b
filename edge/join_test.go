package edge

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/volume"
)

// joinUpstream is a fake cluster holding one volume at lsn 1 (page count
// 4, every page written at lsn 1) whose stale reads come from a node that
// has not applied lsn 1: they wait until release is closed, then answer
// out_of_range as a lagging node does. Every other read answers at once.
type joinUpstream struct {
	graftv1connect.UnimplementedVolumeServiceHandler
	vid          volume.ID
	staleStarted chan struct{} // closed by the first stale read
	strongSeen   chan struct{} // closed by the first non-stale read
	release      chan struct{}
	stale        atomic.Int64
	strong       atomic.Int64
}

func (u *joinUpstream) ReadPages(ctx context.Context, req *connect.Request[graftv1.ReadPagesRequest]) (*connect.Response[graftv1.ReadPagesResponse], error) {
	m := req.Msg
	if m.GetConsistency() == graftv1.Consistency_CONSISTENCY_STALE {
		if u.stale.Add(1) == 1 {
			close(u.staleStarted)
		}
		select {
		case <-u.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, connect.NewError(connect.CodeOutOfRange, errors.New("fsm: lsn is past the head: lsn 1, head 0"))
	}
	if u.strong.Add(1) == 1 {
		close(u.strongSeen)
	}
	resp := &graftv1.ReadPagesResponse{Snapshot: &graftv1.Snapshot{Vid: u.vid.String(), Lsn: 1, PageCount: 4}}
	for _, idx := range m.GetPages() {
		resp.Pages = append(resp.Pages, &graftv1.Page{Idx: idx, Lsn: 1, Data: fill(0, 1, volume.PageIdx(idx))})
	}
	return connect.NewResponse(resp), nil
}

// TestEdge_ReadJoinsWeakerLoad: a fixed-LSN read that joins the in-flight
// load of a weaker read of the same snapshot (a stale read answered by a
// node that has not applied it) does not take that load's out_of_range
// for its own answer: it reads at its own consistency. Both the snapshot
// resolution and the page bytes are loaded by singleflight, so both are
// checked. Before the fix the linearizable read answered "out_of_range:
// fsm: lsn is past the head: lsn 1, head 0", as TestEdge_ReadPagesProperty
// did now and then on a loaded machine.
func TestEdge_ReadJoinsWeakerLoad(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resolved bool // the resolution is cached, only the bytes are loaded
		ro       readOpts
	}{
		{"resolution/linearizable", false, readOpts{}},
		{"resolution/at_least_lsn", false, atLSN(1)},
		{"bytes/linearizable", true, readOpts{cons: graftv1.Consistency_CONSISTENCY_LINEARIZABLE}},
		{"bytes/at_least_lsn", true, atLSN(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			up := &joinUpstream{vid: volume.MustNewID(), staleStarted: make(chan struct{}), strongSeen: make(chan struct{}), release: make(chan struct{})}
			_, h := graftv1connect.NewVolumeServiceHandler(up)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			te := startEdge(t, func(cfg *Config) { cfg.Upstream = []string{srv.URL} })
			e := te.Edge
			if tc.resolved {
				e.meta.Set(metaKey{vid: up.vid, lsn: 1}, 4)
				for idx := volume.PageIdx(1); idx <= 3; idx++ {
					e.meta.Set(metaKey{vid: up.vid, lsn: 1, idx: idx}, 1)
				}
			}

			staleErr := make(chan error, 1)
			go func() {
				_, _, err := e.readPages(ctx, up.vid, 1, []volume.PageIdx{1, 2}, readOpts{cons: graftv1.Consistency_CONSISTENCY_STALE})
				staleErr <- err
			}()
			select {
			case <-up.staleStarted:
			case <-ctx.Done():
				t.Fatal("the stale read never reached the upstream")
			}
			// Pages 1 and 2 are the stale read's load, which this read joins;
			// page 3 it loads itself, and it has joined the others by the
			// time its own request reaches the upstream.
			type answer struct {
				snap  volume.Snapshot
				pages []pageVersion
				err   error
			}
			strong := make(chan answer, 1)
			go func() {
				snap, pages, err := e.readPages(ctx, up.vid, 1, []volume.PageIdx{1, 2, 3}, tc.ro)
				strong <- answer{snap, pages, err}
			}()
			select {
			case <-up.strongSeen:
			case <-ctx.Done():
				t.Fatal("the strong read never reached the upstream")
			}
			close(up.release)

			if err := <-staleErr; connect.CodeOf(err) != connect.CodeOutOfRange {
				t.Errorf("stale read of an unapplied snapshot: %v, want out_of_range", err)
			}
			a := <-strong
			if a.err != nil {
				t.Fatalf("%v read joined a failed stale load: %v", tc.ro.cons, a.err)
			}
			if a.snap != (volume.Snapshot{VID: up.vid, LSN: 1, PageCount: 4}) || len(a.pages) != 3 {
				t.Fatalf("read answered %+v with %d pages", a.snap, len(a.pages))
			}
			for i, p := range a.pages {
				if want := volume.PageIdx(i + 1); p.idx != want || p.ver != 1 || string(p.data) != string(fill(0, 1, want)) {
					t.Fatalf("page %d: idx %d version %d, want page %d version 1 with its bytes", i, p.idx, p.ver, want)
				}
			}
			if n := up.stale.Load(); n != 1 {
				t.Errorf("%d stale upstream reads, want 1", n)
			}
		})
	}
}
