package fakes3

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/johannesboyne/gofakes3"
)

// detachedBackend wraps gofakes3's bolt backend so that the objects it
// returns own their bytes. s3bolt decodes a stored object with mgo's bson,
// whose []byte fields alias the decoded buffer, here bbolt's memory map;
// GetObject returns them after its read transaction ended, and gofakes3
// streams them into the response. A response that takes a while (a slow
// client) then reads memory that bbolt has since unmapped on growing the
// file (SIGSEGV/SIGBUS: the server dies) or has reused for other pages
// (wrong bytes). Every write takes mu exclusively and every read copies
// the object out under mu shared, so no write transaction remaps or
// reuses a page while a read still points into it.
type detachedBackend struct {
	gofakes3.Backend
	mu sync.RWMutex
}

// GetObject returns the object with its contents and hash copied out of
// the database's memory.
func (b *detachedBackend) GetObject(bucket, name string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	obj, err := b.Backend.GetObject(bucket, name, rng)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(obj.Contents)
	if cerr := obj.Contents.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("copy object %s/%s: %w", bucket, name, err)
	}
	obj.Contents = readCloser{bytes.NewReader(data)}
	obj.Hash = bytes.Clone(obj.Hash)
	return obj, nil
}

// HeadObject returns the object's metadata with its hash copied.
func (b *detachedBackend) HeadObject(bucket, name string) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	obj, err := b.Backend.HeadObject(bucket, name)
	if err != nil {
		return nil, err
	}
	obj.Hash = bytes.Clone(obj.Hash)
	return obj, nil
}

func (b *detachedBackend) CreateBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.CreateBucket(name)
}

func (b *detachedBackend) DeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteBucket(name)
}

func (b *detachedBackend) ForceDeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.ForceDeleteBucket(name)
}

func (b *detachedBackend) DeleteObject(bucket, name string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteObject(bucket, name)
}

func (b *detachedBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	// Read the body before taking the lock: a slow upload must not stall
	// every other request.
	data, err := gofakes3.ReadAll(input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.PutObject(bucket, key, meta, bytes.NewReader(data), size, conditions)
}

func (b *detachedBackend) DeleteMulti(bucket string, objects ...string) (gofakes3.MultiDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteMulti(bucket, objects...)
}

func (b *detachedBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.CopyObject(srcBucket, srcKey, dstBucket, dstKey, meta)
}

// readCloser is a reader whose Close does nothing.
type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }
