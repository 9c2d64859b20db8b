package flusher_test

import (
	"context"
	"errors"
	"testing"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
)

func TestEnsureIdentity(t *testing.T) {
	ctx := context.Background()
	newState := func(t *testing.T, id string, recovered bool) *log {
		t.Helper()
		l := &log{f: fsm.New()}
		if id != "" {
			l.Propose(ctx, fsm.EncodeIdentity(id))
		}
		if recovered {
			l.Propose(ctx, fsm.EncodeRecovered())
		}
		return l
	}
	stored := func(t *testing.T, store objstore.Store) string {
		t.Helper()
		id, err := flusher.ReadIdentity(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	t.Run("first leader fences an empty bucket", func(t *testing.T) {
		store := objstore.NewMemory()
		l := newState(t, "", false)
		if err := flusher.EnsureIdentity(ctx, l.f, store, l, false, slogDiscard()); err != nil {
			t.Fatal(err)
		}
		if id := l.f.ClusterID(); id == "" || stored(t, store) != id {
			t.Fatalf("state id %q, bucket id %q", id, stored(t, store))
		}
		if err := flusher.EnsureIdentity(ctx, l.f, store, l, false, slogDiscard()); err != nil {
			t.Fatalf("second leader of the same cluster: %v", err)
		}
	})
	t.Run("a cluster that predates identities fences its bucket", func(t *testing.T) {
		store := objstore.NewMemory()
		l := newState(t, "", true)
		if err := flusher.EnsureIdentity(ctx, l.f, store, l, false, slogDiscard()); err != nil {
			t.Fatal(err)
		}
		if id := l.f.ClusterID(); id == "" || stored(t, store) != id {
			t.Fatalf("state id %q, bucket id %q", id, stored(t, store))
		}
	})
	t.Run("a new cluster with empty state adopts the bucket (disaster recovery)", func(t *testing.T) {
		store := objstore.NewMemory()
		first := newState(t, "", false)
		if err := flusher.EnsureIdentity(ctx, first.f, store, first, false, slogDiscard()); err != nil {
			t.Fatal(err)
		}
		l := newState(t, "", false)
		if err := flusher.EnsureIdentity(ctx, l.f, store, l, false, slogDiscard()); err != nil {
			t.Fatal(err)
		}
		if l.f.ClusterID() != first.f.ClusterID() {
			t.Fatalf("recovered cluster id %q, bucket's %q", l.f.ClusterID(), first.f.ClusterID())
		}
	})
	t.Run("a cluster with state refuses another cluster's bucket", func(t *testing.T) {
		store := objstore.NewMemory()
		owner := newState(t, "owner", true)
		if err := flusher.EnsureIdentity(ctx, owner.f, store, owner, false, slogDiscard()); err != nil {
			t.Fatal(err)
		}
		for _, l := range []*log{newState(t, "intruder", true), newState(t, "", true)} {
			if err := flusher.EnsureIdentity(ctx, l.f, store, l, false, slogDiscard()); !errors.Is(err, flusher.ErrForeignBucket) {
				t.Fatalf("foreign bucket: %v", err)
			}
			if stored(t, store) != "owner" {
				t.Fatal("refusing cluster changed the identity object")
			}
		}
		// Told to adopt, it takes the prefix over; the old owner then refuses.
		l := newState(t, "intruder", true)
		if err := flusher.EnsureIdentity(ctx, l.f, store, l, true, slogDiscard()); err != nil {
			t.Fatal(err)
		}
		if stored(t, store) != "intruder" {
			t.Fatalf("adopted bucket names %q", stored(t, store))
		}
		if err := flusher.EnsureIdentity(ctx, owner.f, store, owner, false, slogDiscard()); !errors.Is(err, flusher.ErrForeignBucket) {
			t.Fatalf("previous owner after adoption: %v", err)
		}
	})
	t.Run("an unreadable identity is foreign, even to a new cluster", func(t *testing.T) {
		store := objstore.NewMemory()
		store.Put(ctx, flusher.IdentityKey, []byte("garbage"))
		l := newState(t, "", false)
		if err := flusher.EnsureIdentity(ctx, l.f, store, l, false, slogDiscard()); !errors.Is(err, flusher.ErrForeignBucket) || l.f.ClusterID() != "" {
			t.Fatalf("unreadable identity: %v (state id %q)", err, l.f.ClusterID())
		}
		if err := flusher.EnsureIdentity(ctx, l.f, store, l, true, slogDiscard()); err != nil || stored(t, store) != l.f.ClusterID() {
			t.Fatalf("adopt over an unreadable identity: %v", err)
		}
	})
	t.Run("a store that is down is not foreign", func(t *testing.T) {
		fs, err := faulty.New(objstore.NewMemory(), faulty.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		fs.Down()
		l := newState(t, "", false)
		err = flusher.EnsureIdentity(ctx, l.f, fs, l, false, slogDiscard())
		var se *flusher.StoreError
		if !errors.As(err, &se) || errors.Is(err, flusher.ErrForeignBucket) {
			t.Fatalf("store down: %v", err)
		}
	})
}
