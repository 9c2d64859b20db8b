package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/graft-cluster/graft/objstore"
)

// CountingStore wraps an objstore.Store and counts its requests by
// operation; Latency, when set, delays every request (an S3 round trip on an
// in-memory store). It passes RangeLister through, so ListAfter stays one
// request.
type CountingStore struct {
	objstore.Store
	// Latency is added to every request. Set it before use.
	Latency time.Duration

	puts, gets, ranges, lists, deletes atomic.Int64
}

// Counts are a CountingStore's request counts.
type Counts struct {
	Put, Get, GetRange, List, Delete int64
}

// Total returns the number of requests.
func (c Counts) Total() int64 { return c.Put + c.Get + c.GetRange + c.List + c.Delete }

// Counts returns the counts so far.
func (s *CountingStore) Counts() Counts {
	return Counts{Put: s.puts.Load(), Get: s.gets.Load(), GetRange: s.ranges.Load(), List: s.lists.Load(), Delete: s.deletes.Load()}
}

// Reset zeroes the counts.
func (s *CountingStore) Reset() {
	for _, c := range []*atomic.Int64{&s.puts, &s.gets, &s.ranges, &s.lists, &s.deletes} {
		c.Store(0)
	}
}

func (s *CountingStore) wait(ctx context.Context) {
	if s.Latency <= 0 {
		return
	}
	t := time.NewTimer(s.Latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Put counts and forwards.
func (s *CountingStore) Put(ctx context.Context, key string, data []byte) error {
	s.puts.Add(1)
	s.wait(ctx)
	return s.Store.Put(ctx, key, data)
}

// PutIfAbsent counts and forwards.
func (s *CountingStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	s.puts.Add(1)
	s.wait(ctx)
	return s.Store.PutIfAbsent(ctx, key, data)
}

// Get counts and forwards.
func (s *CountingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	s.wait(ctx)
	return s.Store.Get(ctx, key)
}

// GetRange counts and forwards.
func (s *CountingStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.ranges.Add(1)
	s.wait(ctx)
	return s.Store.GetRange(ctx, key, off, n)
}

// List counts one request per 1000 keys returned (an S3 LIST page), at
// least one.
func (s *CountingStore) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	objs, err := s.Store.List(ctx, prefix)
	pages := int64(1 + len(objs)/1000)
	s.lists.Add(pages)
	for range pages {
		s.wait(ctx)
	}
	return objs, err
}

// ListAfter counts one request.
func (s *CountingStore) ListAfter(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, error) {
	s.lists.Add(1)
	s.wait(ctx)
	return objstore.ListAfter(ctx, s.Store, prefix, startAfter, limit)
}

// Delete counts and forwards.
func (s *CountingStore) Delete(ctx context.Context, key string) error {
	s.deletes.Add(1)
	s.wait(ctx)
	return s.Store.Delete(ctx, key)
}
