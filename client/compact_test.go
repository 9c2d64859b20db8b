package client_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func TestVolume_Compact(t *testing.T) {
	ctx := context.Background()
	v := mustVolume(t, openRT(t, client.Config{}), volume.MustNewID())
	var old *client.Reader
	for i := 1; i <= 5; i++ {
		write(t, v, map[volume.PageIdx]byte{1: byte(i), volume.PageIdx(10 + i): byte(i)})
		if i == 2 {
			old = v.Reader()
		}
	}
	w := v.Writer() // pins 5 until collected
	// The writers of write() pin 1..4 until they are collected; old pins
	// 2, so at most page 1's version at 1 can go.
	compactUntil := func(want int) int {
		t.Helper()
		total := 0
		deadline := time.Now().Add(10 * time.Second)
		for total < want {
			if time.Now().After(deadline) {
				t.Fatalf("compact: removed %d in all, want %d", total, want)
			}
			runtime.GC()
			n, err := v.Compact(ctx)
			if err != nil {
				t.Fatal(err)
			}
			total += n
			time.Sleep(10 * time.Millisecond)
		}
		return total
	}
	compactUntil(1)
	if n, err := v.Compact(ctx); err != nil || n != 0 {
		t.Fatalf("compact with a reader pinned at 2: removed %d more, %v", n, err)
	}
	expectPage(t, old, 1, 2)
	expectPage(t, old, 11, 1)
	expectPage(t, old, 13, 0)
	expectPage(t, w, 1, 5)

	old = nil
	compactUntil(3) // page 1's versions 2..4
	if n, err := v.Compact(ctx); err != nil || n != 0 {
		t.Fatalf("compact again: removed %d more, %v", n, err)
	}
	r := v.Reader()
	expectPage(t, r, 1, 5)
	for i := 1; i <= 5; i++ {
		expectPage(t, r, volume.PageIdx(10+i), byte(i))
	}
	if _, err := w.Commit(ctx); err != nil { // nothing to commit: its base is the head
		t.Fatal(err)
	}
	runtime.KeepAlive(w)
}

func TestVolume_SyncCompacts(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	v := mustVolume(t, openRT(t, client.Config{Endpoints: c.Endpoints()}), volume.MustNewID())
	for i := 1; i <= 5; i++ {
		write(t, v, map[volume.PageIdx]byte{1: byte(i), 2: 2})
	}
	if st := v.Stats(); st.Versions != 10 {
		t.Fatalf("versions before: %+v", st)
	}
	opts := client.SyncOptions{Interval: 20 * time.Millisecond, CompactInterval: 20 * time.Millisecond}
	if err := v.StartSync(ctx, opts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the sync loop to push and compact", func() bool {
		runtime.GC() // collects the writers, releasing their pins
		return v.Snapshot().RemoteLSN == 1 && v.Stats().Versions == 2
	})
	v.StopSync()
	expectPage(t, v.Reader(), 1, 5)
	expectPage(t, v.Reader(), 2, 2)
}
