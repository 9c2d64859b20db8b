package boltstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/graft-cluster/graft/client/boltstore"
	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/client/store/storetest"
)

func TestStore_Suite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := boltstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestStore_Reopen(t *testing.T) {
	dir := t.TempDir()
	s, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx store.Tx) error { return tx.Put(store.Volumes, []byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.View(func(tx store.Tx) error {
		if got := tx.Get(store.Volumes, []byte("k")); string(got) != "v" {
			t.Fatalf("after reopen: %q", got)
		}
		return nil
	})
}

func TestOpen_Corrupt(t *testing.T) {
	for name, damage := range map[string]func(b []byte) []byte{
		"garbage":   func(b []byte) []byte { return []byte("this is not a bbolt file, not at all, no") },
		"truncated": func(b []byte) []byte { return b[:4096+100] },
		"meta pages zeroed": func(b []byte) []byte {
			clear(b[:8192])
			return b
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := boltstore.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Update(func(tx store.Tx) error { return tx.Put(store.Volumes, []byte("k"), []byte("v")) }); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, boltstore.FileName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = boltstore.Open(dir)
			if !errors.Is(err, store.ErrCorrupt) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("open of a %s file: %v, want ErrCorrupt", name, err)
			}
			// Never rebuilt: the damaged file is still there, as it was.
			after, _ := os.ReadFile(path)
			if len(after) != len(damage(b)) {
				t.Fatalf("file changed size: %d -> %d", len(damage(b)), len(after))
			}
		})
	}
}
