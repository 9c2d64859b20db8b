package cluster

import (
	"testing"

	"github.com/hashicorp/raft"
)

func TestLogCache_StoreLogs(t *testing.T) {
	store := raft.NewInmemStore()
	c := newLogCache(store, 8, 4<<10)
	entry := func(i uint64, size int) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, size)}
	}
	for i := uint64(1); i <= 10; i++ {
		if err := c.StoreLogs([]*raft.Log{entry(i, 1<<10)}); err != nil {
			t.Fatal(err)
		}
	}
	// 4 KiB holds the last four 1 KiB entries.
	if len(c.byIdx) != 4 || c.bytes != 4<<10 || c.byIdx[7] == nil || c.byIdx[10] == nil {
		t.Fatalf("cached %d entries, %d bytes: want 7..10, 4 KiB", len(c.byIdx), c.bytes)
	}
	// Small entries: the entry count binds.
	for i := uint64(11); i <= 30; i++ {
		if err := c.StoreLog(entry(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.byIdx) != 8 || c.byIdx[23] == nil || c.byIdx[22] != nil {
		t.Fatalf("cached %d entries: want 23..30", len(c.byIdx))
	}
	// An entry over the byte cap is stored but not cached; every entry
	// still reads back, from the cache or the store.
	if err := c.StoreLog(entry(31, 8<<10)); err != nil {
		t.Fatal(err)
	}
	if c.byIdx[31] != nil {
		t.Fatal("an entry over the byte cap was cached")
	}
	for i := uint64(1); i <= 31; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("get %d: %v %d", i, err, l.Index)
		}
	}
	// A rewritten index (truncated tail) replaces the cached entry.
	if err := c.StoreLog(entry(30, 100)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(30, &l); err != nil || len(l.Data) != 100 {
		t.Fatalf("rewritten 30: %v, %d bytes", err, len(l.Data))
	}
	if err := c.DeleteRange(1, 31); err != nil || len(c.byIdx) != 0 || c.bytes != 0 {
		t.Fatalf("after DeleteRange: %v, %d cached, %d bytes", err, len(c.byIdx), c.bytes)
	}
}
