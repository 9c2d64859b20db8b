package cluster

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// Sizes of the in-memory cache of recent Raft log entries in front of the
// log store (it serves replication and the followers' apply without
// reading the store back).
const (
	// LogCacheEntries caps the cached entries.
	LogCacheEntries = 1024
	// LogCacheBytes caps the cached entries' data. hashicorp/raft's own
	// LogCache counts entries only: with batched commits (up to
	// MaxCommitBatchBytes per entry) or 64 KiB commits, 1,024 entries are
	// hundreds of MiB of heap on every node.
	LogCacheBytes = 16 << 20
)

// logCache is raft.LogCache bounded by bytes as well as entries: it keeps
// the most recently stored entries, oldest evicted first.
type logCache struct {
	store      raft.LogStore
	maxEntries int
	maxBytes   int

	mu    sync.RWMutex
	byIdx map[uint64]*raft.Log
	order []uint64 // cached indexes, oldest first
	bytes int
}

var _ raft.MonotonicLogStore = (*logCache)(nil)

// NewLogCache returns the log cache a node puts in front of store
// (LogCacheEntries, LogCacheBytes); the bare-Raft benchmark baseline uses
// it too.
func NewLogCache(store raft.LogStore) raft.LogStore {
	return newLogCache(store, LogCacheEntries, LogCacheBytes)
}

func newLogCache(store raft.LogStore, maxEntries, maxBytes int) *logCache {
	return &logCache{store: store, maxEntries: maxEntries, maxBytes: maxBytes, byIdx: make(map[uint64]*raft.Log, maxEntries)}
}

// IsMonotonic passes the store's answer on (raft-wal is monotonic).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	l := c.byIdx[idx]
	c.mu.RUnlock()
	if l != nil {
		*log = *l
		return nil
	}
	return c.store.GetLog(idx, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("store logs: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if len(l.Data) > c.maxBytes {
			continue
		}
		if old := c.byIdx[l.Index]; old != nil {
			c.bytes -= len(old.Data) // rewritten index (a truncated tail); its slot in order stays
		}
		c.byIdx[l.Index] = l
		c.order = append(c.order, l.Index)
		c.bytes += len(l.Data)
	}
	for len(c.byIdx) > c.maxEntries || c.bytes > c.maxBytes {
		idx := c.order[0]
		c.order = c.order[1:]
		if l := c.byIdx[idx]; l != nil {
			c.bytes -= len(l.Data)
			delete(c.byIdx, idx)
		}
	}
	return nil
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }
func (c *logCache) LastIndex() (uint64, error)  { return c.store.LastIndex() }

// DeleteRange drops the whole cache, as raft.LogCache does.
func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	c.byIdx = make(map[uint64]*raft.Log, c.maxEntries)
	c.order, c.bytes = nil, 0
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}
