// Package storetest is a conformance suite for client/store.Store
// implementations.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/graft-cluster/graft/client/store"
)

// Run runs the suite; open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("put get delete", func(t *testing.T) {
		s := open(t)
		must(t, s.Update(func(tx store.Tx) error {
			if err := tx.Put(store.Pages, []byte("a"), []byte("1")); err != nil {
				return err
			}
			if err := tx.Put(store.Pages, []byte("b"), nil); err != nil {
				return err
			}
			if got := tx.Get(store.Pages, []byte("a")); string(got) != "1" {
				return fmt.Errorf("own write: got %q", got)
			}
			return tx.Delete(store.Pages, []byte("missing"))
		}))
		must(t, s.View(func(tx store.Tx) error {
			if got := tx.Get(store.Pages, []byte("a")); string(got) != "1" {
				return fmt.Errorf("a: got %q", got)
			}
			if got := tx.Get(store.Pages, []byte("b")); got == nil || len(got) != 0 {
				return fmt.Errorf("b: got %v, want empty non-nil", got)
			}
			if got := tx.Get(store.Commits, []byte("a")); got != nil {
				return fmt.Errorf("buckets are apart: got %q", got)
			}
			return nil
		}))
		must(t, s.Update(func(tx store.Tx) error { return tx.Delete(store.Pages, []byte("a")) }))
		must(t, s.View(func(tx store.Tx) error {
			if got := tx.Get(store.Pages, []byte("a")); got != nil {
				return fmt.Errorf("deleted: got %q", got)
			}
			return nil
		}))
	})
	t.Run("failed update applies nothing", func(t *testing.T) {
		s := open(t)
		must(t, s.Update(func(tx store.Tx) error {
			return errors.Join(tx.Put(store.Volumes, []byte("k"), []byte("old")), tx.Put(store.Volumes, []byte("gone"), []byte("x")))
		}))
		boom := errors.New("boom")
		err := s.Update(func(tx store.Tx) error {
			_ = tx.Put(store.Volumes, []byte("k"), []byte("new"))
			_ = tx.Put(store.Volumes, []byte("k2"), []byte("new"))
			_ = tx.Delete(store.Volumes, []byte("gone"))
			_ = tx.Put(store.Volumes, []byte("k2"), []byte("newer"))
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update error: %v", err)
		}
		must(t, s.View(func(tx store.Tx) error {
			if got := tx.Get(store.Volumes, []byte("k")); string(got) != "old" {
				return fmt.Errorf("k: got %q", got)
			}
			if got := tx.Get(store.Volumes, []byte("k2")); got != nil {
				return fmt.Errorf("k2: got %q", got)
			}
			if got := tx.Get(store.Volumes, []byte("gone")); string(got) != "x" {
				return fmt.Errorf("gone: got %q", got)
			}
			var keys []string
			err := tx.Scan(store.Volumes, nil, func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
			if fmt.Sprint(keys) != "[gone k]" {
				return fmt.Errorf("keys after rollback: %v", keys)
			}
			return err
		}))
	})
	t.Run("floor and scan", func(t *testing.T) {
		s := open(t)
		keys := []string{"a1", "a3", "a5", "b2", "c"}
		must(t, s.Update(func(tx store.Tx) error {
			for _, k := range keys {
				if err := tx.Put(store.Pages, []byte(k), []byte("v"+k)); err != nil {
					return err
				}
			}
			return nil
		}))
		cases := []struct{ prefix, key, want string }{
			{"a", "a0", ""}, {"a", "a1", "a1"}, {"a", "a2", "a1"}, {"a", "a4", "a3"},
			{"a", "a9", "a5"}, {"b", "b1", ""}, {"b", "b9", "b2"}, {"c", "c", "c"},
			{"c", "cz", "c"}, {"d", "d5", ""}, {"", "zz", "c"}, {"", "0", ""},
		}
		must(t, s.View(func(tx store.Tx) error {
			for _, c := range cases {
				k, v := tx.Floor(store.Pages, []byte(c.prefix), []byte(c.key))
				if string(k) != c.want || (k != nil && string(v) != "v"+c.want) {
					return fmt.Errorf("Floor(%q, %q) = %q, %q; want %q", c.prefix, c.key, k, v, c.want)
				}
			}
			var got []string
			err := tx.Scan(store.Pages, []byte("a"), func(k, v []byte) error {
				if !bytes.Equal(v, append([]byte("v"), k...)) {
					return fmt.Errorf("scan %q: value %q", k, v)
				}
				got = append(got, string(k))
				return nil
			})
			if fmt.Sprint(got) != "[a1 a3 a5]" {
				return fmt.Errorf("scan a: %v", got)
			}
			stop := errors.New("stop")
			n := 0
			if err2 := tx.Scan(store.Pages, nil, func(k, v []byte) error { n++; return stop }); !errors.Is(err2, stop) || n != 1 {
				return fmt.Errorf("scan stop: %v after %d", err2, n)
			}
			return err
		}))
	})
	t.Run("read-only view", func(t *testing.T) {
		s := open(t)
		err := s.View(func(tx store.Tx) error { return tx.Put(store.Meta, []byte("k"), []byte("v")) })
		if err == nil {
			t.Fatal("put in a view succeeded")
		}
	})
	t.Run("closed", func(t *testing.T) {
		s := open(t)
		must(t, s.Close())
		if err := s.Update(func(store.Tx) error { return nil }); err == nil {
			t.Fatal("update after close succeeded")
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
