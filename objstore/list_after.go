package objstore

import (
	"context"
	"slices"
	"strings"
)

// RangeLister is implemented by stores that can list a bounded window of
// keys in one request (S3: ListObjectsV2 with StartAfter and MaxKeys).
// Readers that need the first few keys after a point (the newest
// checkpoint, the log records after it) use ListAfter, which falls back to
// List for stores without it.
type RangeLister interface {
	// ListAfter returns at most limit objects whose key starts with prefix
	// and sorts bytewise after startAfter ("" : from the start), in key
	// order. limit must be positive.
	ListAfter(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, error)
}

// ListAfter lists at most limit keys under prefix sorting after startAfter:
// one request on a store implementing RangeLister, else a full List
// filtered here. limit <= 0 means no limit (always a full List).
func ListAfter(ctx context.Context, s Store, prefix, startAfter string, limit int) ([]ObjectInfo, error) {
	if rl, ok := s.(RangeLister); ok && limit > 0 {
		return rl.ListAfter(ctx, prefix, startAfter, limit)
	}
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(objs, startAfter, func(o ObjectInfo, k string) int { return strings.Compare(o.Key, k) })
	for i < len(objs) && objs[i].Key <= startAfter {
		i++
	}
	objs = objs[i:]
	if limit > 0 && len(objs) > limit {
		objs = objs[:limit]
	}
	return objs, nil
}
