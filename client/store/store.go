// Package store is the local store of a client replica: a small ordered
// key-value interface with atomic transactions, and an in-memory
// implementation. The client encodes its own keys (pages by vid, index and
// local LSN; commits by vid and LSN; volume state by vid) on top of it. A
// durable implementation lives in client/boltstore, apart, so this package
// and the client core build for GOOS=js and GOOS=wasip1.
package store

import (
	"bytes"
	"errors"
	"slices"
	"sort"
	"sync"
)

// Errors returned by stores.
var (
	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt means the store's contents are not a client store this
	// code can read; the store is never rebuilt silently.
	ErrCorrupt = errors.New("store: corrupt")
	// ErrUnknownBucket means a transaction named a bucket that is not one
	// of Buckets.
	ErrUnknownBucket = errors.New("store: unknown bucket")
)

// Bucket names a keyspace.
type Bucket string

// The buckets every store holds.
const (
	// Meta holds the store's format version.
	Meta Bucket = "meta"
	// Volumes holds each volume's state: vid -> state.
	Volumes Bucket = "volumes"
	// Pages holds page versions: vid|idx|local LSN -> page or marker.
	Pages Bucket = "pages"
	// Commits holds local commits not yet pushed: vid|local LSN -> commit.
	Commits Bucket = "commits"
)

// Buckets lists every bucket.
var Buckets = []Bucket{Meta, Volumes, Pages, Commits}

// Store is an ordered key-value store with atomic transactions.
type Store interface {
	// View runs fn in a read-only transaction over a consistent view.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction: all of its writes apply
	// at once, durably (fsynced, for a durable store), when fn returns nil,
	// and none of them when fn returns an error. Updates are serialized.
	Update(fn func(Tx) error) error
	// Close releases the store.
	Close() error
}

// Tx is a transaction. Byte slices it returns are valid only until the
// transaction ends and must not be modified.
type Tx interface {
	// Get returns the value of key, or nil when absent.
	Get(b Bucket, key []byte) []byte
	// Put sets key to val (copied).
	Put(b Bucket, key, val []byte) error
	// Delete removes key; absent keys are not an error.
	Delete(b Bucket, key []byte) error
	// Floor returns the greatest key k with the given prefix and k <= key,
	// and its value; nil, nil when there is none.
	Floor(b Bucket, prefix, key []byte) (k, v []byte)
	// Scan calls fn for each key with the given prefix, in ascending
	// order, until fn returns an error (returned). fn must not write.
	Scan(b Bucket, prefix []byte, fn func(k, v []byte) error) error
}

// Mem is an in-memory Store (no durability). It is safe for concurrent use.
type Mem struct {
	mu      sync.RWMutex
	closed  bool
	buckets map[Bucket]*memBucket
}

type memBucket struct {
	keys []string // sorted
	vals map[string][]byte
}

// NewMem returns an empty in-memory store.
func NewMem() *Mem {
	m := &Mem{buckets: make(map[Bucket]*memBucket)}
	for _, b := range Buckets {
		m.buckets[b] = &memBucket{vals: make(map[string][]byte)}
	}
	return m
}

// View implements Store.
func (m *Mem) View(fn func(Tx) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return fn(&memTx{m: m})
}

// Update implements Store.
func (m *Mem) Update(fn func(Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	tx := &memTx{m: m, writable: true}
	if err := fn(tx); err != nil {
		tx.rollback()
		return err
	}
	return nil
}

// Close implements Store.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

type undo struct {
	b       *memBucket
	key     string
	existed bool
	val     []byte
}

type memTx struct {
	m        *Mem
	writable bool
	undo     []undo
}

var errReadOnly = errors.New("store: write in a read-only transaction")

func (t *memTx) bucket(b Bucket) *memBucket { return t.m.buckets[b] }

func (t *memTx) Get(b Bucket, key []byte) []byte {
	mb := t.bucket(b)
	if mb == nil {
		return nil
	}
	return mb.vals[string(key)]
}

func (t *memTx) Put(b Bucket, key, val []byte) error {
	if !t.writable {
		return errReadOnly
	}
	mb := t.bucket(b)
	if mb == nil {
		return ErrUnknownBucket
	}
	k := string(key)
	old, ok := mb.vals[k]
	t.undo = append(t.undo, undo{b: mb, key: k, existed: ok, val: old})
	if !ok {
		mb.insert(k)
	}
	mb.vals[k] = bytes.Clone(val)
	if mb.vals[k] == nil {
		mb.vals[k] = []byte{}
	}
	return nil
}

func (t *memTx) Delete(b Bucket, key []byte) error {
	if !t.writable {
		return errReadOnly
	}
	mb := t.bucket(b)
	if mb == nil {
		return ErrUnknownBucket
	}
	k := string(key)
	old, ok := mb.vals[k]
	if !ok {
		return nil
	}
	t.undo = append(t.undo, undo{b: mb, key: k, existed: true, val: old})
	mb.remove(k)
	return nil
}

func (t *memTx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		u := t.undo[i]
		_, now := u.b.vals[u.key]
		switch {
		case u.existed && !now:
			u.b.insert(u.key)
			u.b.vals[u.key] = u.val
		case u.existed:
			u.b.vals[u.key] = u.val
		case now:
			u.b.remove(u.key)
		}
	}
	t.undo = nil
}

func (t *memTx) Floor(b Bucket, prefix, key []byte) ([]byte, []byte) {
	mb := t.bucket(b)
	if mb == nil {
		return nil, nil
	}
	k := string(key)
	i := sort.SearchStrings(mb.keys, k) // first >= key
	if i < len(mb.keys) && mb.keys[i] == k {
		return []byte(k), mb.vals[k]
	}
	if i == 0 {
		return nil, nil
	}
	f := mb.keys[i-1]
	if !bytes.HasPrefix([]byte(f), prefix) {
		return nil, nil
	}
	return []byte(f), mb.vals[f]
}

func (t *memTx) Scan(b Bucket, prefix []byte, fn func(k, v []byte) error) error {
	mb := t.bucket(b)
	if mb == nil {
		return ErrUnknownBucket
	}
	p := string(prefix)
	for i := sort.SearchStrings(mb.keys, p); i < len(mb.keys); i++ {
		k := mb.keys[i]
		if len(k) < len(p) || k[:len(p)] != p {
			break
		}
		if err := fn([]byte(k), mb.vals[k]); err != nil {
			return err
		}
	}
	return nil
}

func (mb *memBucket) insert(k string) {
	i := sort.SearchStrings(mb.keys, k)
	mb.keys = slices.Insert(mb.keys, i, k)
}

func (mb *memBucket) remove(k string) {
	i := sort.SearchStrings(mb.keys, k)
	if i < len(mb.keys) && mb.keys[i] == k {
		mb.keys = slices.Delete(mb.keys, i, i+1)
	}
	delete(mb.vals, k)
}
