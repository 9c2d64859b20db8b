//go:build js || wasip1

package wasmtest_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/volume"
)

func TestOpen_DirRefused(t *testing.T) {
	_, err := client.Open(context.Background(), client.Config{Dir: t.TempDir()})
	if !errors.Is(err, client.ErrNoStoreDir) {
		t.Fatalf("open with Dir on wasm: %v", err)
	}
}

func TestVolume_LocalCommitsOnMemStore(t *testing.T) {
	ctx := context.Background()
	s := store.NewMem()
	rt, err := client.Open(ctx, client.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	vid := volume.MustNewID()
	v, err := rt.Volume(ctx, vid)
	if err != nil {
		t.Fatal(err)
	}
	w := v.Writer()
	p := bytes.Repeat([]byte{7}, volume.PageSize)
	if err := w.WritePage(3, p); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	// A Store given in Config is the caller's: Close leaves it open.
	rt, err = client.Open(ctx, client.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	v, err = rt.Volume(ctx, vid)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Reader().ReadPage(ctx, 3)
	if err != nil || !bytes.Equal(got, p) {
		t.Fatalf("read after reopen: %v", err)
	}
	if s := v.Snapshot(); s.LocalLSN != 1 || s.PageCount != 3 {
		t.Fatalf("snapshot: %+v", s)
	}
	if _, err := v.Push(ctx); !errors.Is(err, client.ErrNoEndpoints) {
		t.Fatalf("push without endpoints: %v", err)
	}
}
