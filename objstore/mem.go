package objstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// memStore keeps objects in a map. It copies data in and out, so callers
// own their slices.
type memStore struct {
	mu      sync.RWMutex
	objects map[string]memObject
	closed  bool
	now     func() time.Time
}

type memObject struct {
	data     []byte
	modified time.Time
}

// NewMemory returns a new, empty in-memory Store (what Open("mem://")
// returns). It enforces every Store guarantee, PutIfAbsent included.
func NewMemory() Store {
	return &memStore{objects: make(map[string]memObject), now: time.Now}
}

// NewMemoryWithClock is NewMemory whose objects' Modified times come from
// now: tests of what depends on object age (GC grace periods) drive it
// with the same clock as the code under test.
func NewMemoryWithClock(now func() time.Time) Store {
	return &memStore{objects: make(map[string]memObject), now: now}
}

// begin checks the arguments every call shares, under the caller's lock.
func (s *memStore) begin(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return ErrClosed
	}
	return ValidateKey(key)
}

func (s *memStore) Put(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	s.objects[key] = memObject{data: slices.Clone(data), modified: s.now()}
	return nil
}

func (s *memStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(ctx, key); err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	if _, ok := s.objects[key]; ok {
		return fmt.Errorf("put %s if absent: %w", key, ErrExists)
	}
	s.objects[key] = memObject{data: slices.Clone(data), modified: s.now()}
	return nil
}

func (s *memStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.begin(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	o, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	return append([]byte{}, o.data...), nil
}

func (s *memStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.begin(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, err)
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, ErrRange)
	}
	o, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, ErrNotFound)
	}
	if size := int64(len(o.data)); off > size || n > size-off {
		return nil, fmt.Errorf("get %s [%d, +%d) of %d bytes: %w", key, off, n, size, ErrRange)
	}
	return append([]byte{}, o.data[off:off+n]...), nil
}

func (s *memStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if s.closed {
		return nil, fmt.Errorf("list %s: %w", prefix, ErrClosed)
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var out []ObjectInfo
	for k, o := range s.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(o.data)), Modified: o.modified})
		}
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (s *memStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	delete(s.objects, key)
	return nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.objects = nil
	return nil
}

// ListAfter implements RangeLister.
func (s *memStore) ListAfter(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, error) {
	all, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	i := 0
	for i < len(all) && all[i].Key <= startAfter {
		i++
	}
	all = all[i:]
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}
