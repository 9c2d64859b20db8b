package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func TestVolume_OfflineCommitsPushedLater(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	g := newGate(t, c.Endpoint(1))
	vid := volume.MustNewID()
	a := mustVolume(t, openRT(t, client.Config{Endpoints: []string{g.URL()}, Options: fastFail}), vid)
	b := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)

	g.down()
	write(t, a, map[volume.PageIdx]byte{1: 1, 2: 2})
	write(t, a, map[volume.PageIdx]byte{2: 0x22})
	if _, err := a.Push(ctx); err == nil || errors.Is(err, client.ErrRejected) {
		t.Fatalf("push while unreachable: %v", err)
	}
	if a.Status() != client.StatusInterruptedPush {
		t.Fatalf("status after a push of unknown outcome: %v", a.Status())
	}
	write(t, a, map[volume.PageIdx]byte{3: 3}) // still committing locally
	expectPage(t, a.Reader(), 2, 0x22)

	g.up()
	res, err := a.Push(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resent || res.RemoteLSN != 1 || res.Pages != 2 {
		t.Fatalf("resent push: %+v", res)
	}
	res, err = a.Push(ctx) // the commit made after the recorded push
	if err != nil || res.Resent || res.RemoteLSN != 2 || res.Pages != 1 {
		t.Fatalf("second push: %+v, %v", res, err)
	}
	if a.Status() != client.StatusOk {
		t.Fatalf("status: %v", a.Status())
	}
	if err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	r := b.Reader()
	expectPage(t, r, 1, 1)
	expectPage(t, r, 2, 0x22)
	expectPage(t, r, 3, 3)
	if s := b.Snapshot(); s.RemoteLSN != 2 || s.PageCount != 3 {
		t.Fatalf("b: %+v", s)
	}
}

// A push whose ack is lost, then a crash (the runtime closed and reopened
// from its directory): the next Push resends the identical commit and
// gets the original LSN, even after another replica committed on top.
func TestVolume_PushAckLostThenRestart(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	g := newGate(t, c.Endpoint(0))
	dir := t.TempDir()
	vid := volume.MustNewID()
	cfg := client.Config{Dir: dir, Endpoints: []string{g.URL()}, Options: fastFail}
	rt, err := client.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := mustVolume(t, rt, vid)
	write(t, a, map[volume.PageIdx]byte{1: 0xa1, 2: 0xa2})
	g.dropAcks.Store(true)
	if _, err := a.Push(ctx); err == nil {
		t.Fatal("push with its acks dropped succeeded")
	}
	if g.commits.Load() == 0 {
		t.Fatal("no commit reached the cluster")
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	g.dropAcks.Store(false)

	// Another replica sees the commit and commits on top of it.
	b := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
	if err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	expectPage(t, b.Reader(), 1, 0xa1)
	write(t, b, map[volume.PageIdx]byte{3: 0xb3})
	if res, err := b.Push(ctx); err != nil || res.RemoteLSN != 2 {
		t.Fatalf("b push: %+v, %v", res, err)
	}

	a = mustVolume(t, openRT(t, cfg), vid)
	if a.Status() != client.StatusInterruptedPush {
		t.Fatalf("status after restart: %v", a.Status())
	}
	res, err := a.Push(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resent || res.RemoteLSN != 1 {
		t.Fatalf("resent push after restart: %+v", res)
	}
	_, commits, _, err := c.Client().PullCommits(ctx, vid, 0, 0, 0, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ci := range commits {
		if ci.Hash == res.Hash {
			n++
		}
	}
	if len(commits) != 2 || n != 1 || commits[0].Hash != res.Hash {
		t.Fatalf("chain: %d commits, pushed hash %d times, want 2 and once at LSN 1", len(commits), n)
	}
	if err := a.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	expectPage(t, a.Reader(), 3, 0xb3)
	expectPage(t, a.Reader(), 1, 0xa1)
}

func TestVolume_BackgroundSync(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	g := newGate(t, c.Endpoint(2))
	vid := volume.MustNewID()
	rtA := openRT(t, client.Config{Endpoints: []string{g.URL()}, Options: fastFail})
	a := mustVolume(t, rtA, vid)
	b := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), vid)
	opts := client.SyncOptions{Interval: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	if err := a.StartSync(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if err := a.StartSync(ctx, opts); !errors.Is(err, client.ErrSyncRunning) {
		t.Fatalf("second StartSync: %v", err)
	}
	if err := b.StartSync(ctx, opts); err != nil {
		t.Fatal(err)
	}
	write(t, a, map[volume.PageIdx]byte{1: 1})
	waitFor(t, 20*time.Second, "b to pull a's commit", func() bool { return b.Snapshot().RemoteLSN == 1 })
	expectPage(t, b.Reader(), 1, 1)

	// Offline: a commits, the loop fails and backs off; back online, it pushes.
	g.down()
	write(t, a, map[volume.PageIdx]byte{2: 2})
	waitFor(t, 20*time.Second, "a's sync loop to fail", func() bool { return a.SyncError() != nil })
	g.up()
	waitFor(t, 20*time.Second, "b to pull a's offline commit", func() bool { return b.Snapshot().RemoteLSN == 2 })
	expectPage(t, b.Reader(), 2, 2)
	if a.SyncError() != nil && a.Snapshot().RemoteLSN != 2 {
		t.Fatalf("a: %+v, %v", a.Snapshot(), a.SyncError())
	}
	// b's commits flow to a the same way.
	write(t, b, map[volume.PageIdx]byte{3: 3})
	waitFor(t, 20*time.Second, "a to pull b's commit", func() bool { return a.Snapshot().RemoteLSN == 3 })
	expectPage(t, a.Reader(), 3, 3)
	a.StopSync()
	a.StopSync() // idempotent
	if err := rtA.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestVolume_StartSyncCtxEnds(t *testing.T) {
	c := clustertest.Start(t, 3)
	v := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), volume.MustNewID())
	ctx, cancel := context.WithCancel(context.Background())
	opts := client.SyncOptions{Interval: 20 * time.Millisecond}
	if err := v.StartSync(ctx, opts); err != nil {
		t.Fatal(err)
	}
	cancel()
	// The loop ends with its ctx; a new one may start.
	waitFor(t, 10*time.Second, "StartSync to accept a new loop", func() bool {
		err := v.StartSync(context.Background(), opts)
		if err != nil && !errors.Is(err, client.ErrSyncRunning) {
			t.Fatal(err)
		}
		return err == nil
	})
	write(t, v, map[volume.PageIdx]byte{1: 1})
	waitFor(t, 20*time.Second, "the new loop to push", func() bool { return v.Snapshot().RemoteLSN == 1 })
	v.StopSync()
}

// StopSync right after StartSync, before the loop's goroutine first ran,
// must neither panic nor hang (the goroutine used to close s.done after
// StopSync had cleared it: "close of nil channel").
func TestVolume_StopSyncRightAfterStart(t *testing.T) {
	v := mustVolume(t, openRT(t, client.Config{Endpoints: []string{"http://127.0.0.1:1"}}), volume.MustNewID())
	for range 200 {
		if err := v.StartSync(context.Background(), client.SyncOptions{Interval: time.Hour}); err != nil {
			t.Fatal(err)
		}
		v.StopSync()
	}
}
