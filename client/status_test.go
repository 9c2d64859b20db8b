package client_test

import (
	"errors"

	"connectrpc.com/connect"
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func TestVolume_PullConflict(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	vid := volume.MustNewID()
	a := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
	b := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
	// A volume the cluster has never seen pulls as empty.
	if err := b.Pull(ctx); err != nil {
		t.Fatalf("pull of a new volume: %v", err)
	}
	if s := b.Snapshot(); s.RemoteLSN != 0 || s.LocalLSN != 0 {
		t.Fatalf("b after pulling a new volume: %+v", s)
	}
	write(t, a, map[volume.PageIdx]byte{1: 1})
	if _, err := a.Push(ctx); err != nil {
		t.Fatal(err)
	}
	write(t, b, map[volume.PageIdx]byte{1: 0xb})
	if err := b.Pull(ctx); !errors.Is(err, client.ErrDiverged) || b.Status() != client.StatusConflict {
		t.Fatalf("pull with local commits after a remote one: %v, status %v", err, b.Status())
	}
	if _, err := b.Push(ctx); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("push in conflict: %v", err)
	}
	if err := b.Sync(ctx); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("sync in conflict: %v", err)
	}
	expectPage(t, b.Reader(), 1, 0xb) // local commits intact
	// Replay with a change that fails leaves the volume reset, at the head.
	boom := errors.New("boom")
	if err := b.Replay(ctx, func(*client.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("replay with a failing change: %v", err)
	}
	if b.Status() != client.StatusOk {
		t.Fatalf("status after replay: %v", b.Status())
	}
	expectPage(t, b.Reader(), 1, 1)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// Reset with a recorded push of unknown outcome resolves it first: a push
// that never reached the cluster and lost the race is dropped with the
// local commits.
func TestVolume_ResetResolvesInterruptedPush(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	g := newGate(t, c.Endpoint(0))
	vid := volume.MustNewID()
	a := mustVolume(t, openRT(t, client.Config{Endpoints: []string{g.URL()}, Options: fastFail}), vid)
	b := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
	g.down()
	write(t, a, map[volume.PageIdx]byte{1: 0xa})
	if _, err := a.Push(ctx); err == nil {
		t.Fatal("push while unreachable succeeded")
	}
	if err := a.Reset(ctx); err == nil || a.Status() != client.StatusInterruptedPush {
		t.Fatalf("reset while unreachable: %v, status %v", err, a.Status())
	}
	write(t, b, map[volume.PageIdx]byte{1: 0xb, 2: 0xb})
	if _, err := b.Push(ctx); err != nil {
		t.Fatal(err)
	}
	g.up()
	if err := a.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if s := a.Snapshot(); a.Status() != client.StatusOk || s.RemoteLSN != 1 {
		t.Fatalf("a after reset: %+v, %v", s, a.Status())
	}
	expectPage(t, a.Reader(), 1, 0xb)
	expectPage(t, a.Reader(), 2, 0xb)
}

// A push the cluster refuses whatever its base (more pages than its
// per-commit cap) is not left recorded: the volume stays Ok with its local
// commits, and the next Push tries again.
func TestVolume_PushRefused(t *testing.T) {
	c := clustertest.Start(t, 3, func(_ int, cfg *cluster.Config) { cfg.Limits.MaxPagesPerCommit = 4 })
	ctx := ctxT(t)
	v := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), volume.MustNewID())
	write(t, v, map[volume.PageIdx]byte{1: 1, 2: 2, 3: 3, 4: 4, 5: 5})
	_, err := v.Push(ctx)
	if connect.CodeOf(err) != connect.CodeInvalidArgument || errors.Is(err, client.ErrRejected) {
		t.Fatalf("push of 5 pages, cap 4: %v", err)
	}
	if v.Status() != client.StatusOk {
		t.Fatalf("status after a refused push: %v", v.Status())
	}
	expectPage(t, v.Reader(), 5, 5)
	if _, err := v.Push(ctx); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("second push: %v", err)
	}
}
