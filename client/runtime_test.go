package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/client/boltstore"
	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/volume"
)

func TestOpen_DirDurable(t *testing.T) {
	dir := t.TempDir()
	vid := volume.MustNewID()
	rt, err := client.Open(context.Background(), client.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	v := mustVolume(t, rt, vid)
	write(t, v, map[volume.PageIdx]byte{1: 1, 9: 9})
	s := write(t, v, map[volume.PageIdx]byte{1: 2})
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	rt = openRT(t, client.Config{Dir: dir})
	v = mustVolume(t, rt, vid)
	if got := v.Snapshot(); got != s {
		t.Fatalf("snapshot after reopen: %+v, want %+v", got, s)
	}
	expectPage(t, v.Reader(), 1, 2)
	expectPage(t, v.Reader(), 9, 9)
	expectPage(t, v.Reader(), 2, 0)
}

func TestOpen_Corrupt(t *testing.T) {
	t.Run("bbolt file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, boltstore.FileName), []byte(strings.Repeat("not bolt ", 2000)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := client.Open(context.Background(), client.Config{Dir: dir})
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("open: %v, want ErrCorrupt", err)
		}
	})
	t.Run("not a client store", func(t *testing.T) {
		s := store.NewMem()
		_ = s.Update(func(tx store.Tx) error { return tx.Put(store.Pages, []byte("x"), []byte("y")) })
		_, err := client.Open(context.Background(), client.Config{Store: s})
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("open: %v, want ErrCorrupt", err)
		}
	})
	t.Run("volume state", func(t *testing.T) {
		s := store.NewMem()
		rt := openRT(t, client.Config{Store: s})
		vid := volume.MustNewID()
		_ = s.Update(func(tx store.Tx) error { return tx.Put(store.Volumes, vid[:], []byte{1, 2, 3}) })
		_, err := rt.Volume(context.Background(), vid)
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("volume: %v, want ErrCorrupt", err)
		}
	})
}

func TestVolume_BadInput(t *testing.T) {
	ctx := context.Background()
	// The endpoint is unreachable: bad input must fail before any I/O.
	rt := openRT(t, client.Config{Endpoints: []string{"http://127.0.0.1:1"}})
	if _, err := rt.Volume(ctx, volume.ID{}); !errors.Is(err, client.ErrInvalidVolume) {
		t.Fatalf("zero vid: %v", err)
	}
	if _, err := volume.ParseID("not-a-volume-id"); err == nil {
		t.Fatal("ParseID accepted garbage")
	}
	v := mustVolume(t, rt, volume.MustNewID())
	w := v.Writer()
	if err := w.WritePage(0, page(1)); !errors.Is(err, client.ErrInvalidPage) {
		t.Fatalf("idx 0: %v", err)
	}
	if err := w.WritePage(1, make([]byte, 100)); !errors.Is(err, client.ErrInvalidPage) || !strings.Contains(err.Error(), "100 bytes") {
		t.Fatalf("short page: %v", err)
	}
	if _, err := v.Reader().ReadPage(ctx, 0); !errors.Is(err, client.ErrInvalidPage) {
		t.Fatalf("read idx 0: %v", err)
	}
	if _, err := w.ReadPage(ctx, 0); !errors.Is(err, client.ErrInvalidPage) {
		t.Fatalf("writer read idx 0: %v", err)
	}
	if st := v.Stats(); st.RoundTrips != 0 || st.Reads != 0 {
		t.Fatalf("bad input did I/O: %+v", st)
	}
}

func TestWriter_Commit(t *testing.T) {
	ctx := context.Background()
	rt := openRT(t, client.Config{})
	v := mustVolume(t, rt, volume.MustNewID())
	w1, w2 := v.Writer(), v.Writer()
	r0 := v.Reader()
	if err := w1.WritePage(3, page(3)); err != nil {
		t.Fatal(err)
	}
	expectPage(t, w1, 3, 3) // read your own writes
	expectPage(t, v.Reader(), 3, 0)
	if w1.PageCount() != 3 {
		t.Fatalf("page count after writing page 3: %d", w1.PageCount())
	}
	s, err := w1.Commit(ctx)
	if err != nil || s.LocalLSN != 1 || s.PageCount != 3 {
		t.Fatalf("commit: %+v, %v", s, err)
	}
	if err := w2.WritePage(3, page(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Commit(ctx); !errors.Is(err, client.ErrConcurrentWrite) {
		t.Fatalf("stale writer commit: %v", err)
	}
	expectPage(t, r0, 3, 0) // pinned
	expectPage(t, v.Reader(), 3, 3)
	// The writer continues on its commit.
	if err := w1.WritePage(3, page(5)); err != nil {
		t.Fatal(err)
	}
	w1.SetPageCount(10)
	if s, err := w1.Commit(ctx); err != nil || s.LocalLSN != 2 || s.PageCount != 10 {
		t.Fatalf("second commit: %+v, %v", s, err)
	}
	expectPage(t, v.Reader(), 3, 5)
	if _, err := v.Push(ctx); !errors.Is(err, client.ErrNoEndpoints) {
		t.Fatalf("push without endpoints: %v", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	for name, cfg := range map[string]client.Config{
		"empty endpoint": {Endpoints: []string{""}},
		"huge prefetch":  {MaxPrefetch: client.MaxPrefetchLimit + 1},
	} {
		if _, err := client.Open(context.Background(), cfg); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := client.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_DirHeld(t *testing.T) {
	dir := t.TempDir()
	openRT(t, client.Config{Dir: dir})
	_, err := client.Open(context.Background(), client.Config{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "held by another process") || errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("second open of one dir: %v", err)
	}
}
