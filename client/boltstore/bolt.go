// Package boltstore is the durable local store of a client replica, on
// bbolt: one file, DIR/client.db; every Update is one fsynced bbolt
// transaction. It is apart from the client core so that the core builds
// for js and wasip1.
package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/graft-cluster/graft/client/store"
)

// FileName is the store's file in its directory.
const FileName = "client.db"

// Store is a store.Store on a bbolt file.
type Store struct {
	db *bolt.DB
}

var _ store.Store = (*Store)(nil)

// Open opens (creating) DIR/client.db. A file bbolt cannot open, or one
// that fails bbolt's consistency check, is reported wrapping
// store.ErrCorrupt; it is never rebuilt. A file another process holds
// open fails after a second.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open client store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openDB(path)
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open client store %s: held by another process: %w", path, err)
		}
		return nil, fmt.Errorf("open client store %s: %w: %w", path, store.ErrCorrupt, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range store.Buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return check(tx)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open client store %s: %w: %w", path, store.ErrCorrupt, err)
	}
	return &Store{db: db}, nil
}

// openDB opens the bbolt file; bbolt panics on some damaged files, which
// is reported as an error.
func openDB(path string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt: %v", r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
}

// check runs bbolt's consistency check (every page reachable once, keys
// ordered); a panic on a damaged page is an error.
func check(tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt check: %v", r)
		}
	}()
	for cerr := range tx.Check() {
		if err == nil {
			err = cerr
		}
	}
	return err
}

// View implements store.Store.
func (s *Store) View(fn func(store.Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Update implements store.Store.
func (s *Store) Update(fn func(store.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Get(b store.Bucket, key []byte) []byte {
	bk := t.tx.Bucket([]byte(b))
	if bk == nil {
		return nil
	}
	return bk.Get(key)
}

func (t boltTx) Put(b store.Bucket, key, val []byte) error {
	bk := t.tx.Bucket([]byte(b))
	if bk == nil {
		return store.ErrUnknownBucket
	}
	if val == nil {
		val = []byte{}
	}
	return bk.Put(key, val)
}

func (t boltTx) Delete(b store.Bucket, key []byte) error {
	bk := t.tx.Bucket([]byte(b))
	if bk == nil {
		return store.ErrUnknownBucket
	}
	return bk.Delete(key)
}

func (t boltTx) Floor(b store.Bucket, prefix, key []byte) ([]byte, []byte) {
	bk := t.tx.Bucket([]byte(b))
	if bk == nil {
		return nil, nil
	}
	c := bk.Cursor()
	k, v := c.Seek(key)
	if k != nil && bytes.Equal(k, key) {
		return k, v
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) || bytes.Compare(k, key) > 0 {
		return nil, nil
	}
	return k, v
}

func (t boltTx) Scan(b store.Bucket, prefix []byte, fn func(k, v []byte) error) error {
	bk := t.tx.Bucket([]byte(b))
	if bk == nil {
		return store.ErrUnknownBucket
	}
	c := bk.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}
