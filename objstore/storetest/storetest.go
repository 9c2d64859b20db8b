// Package storetest is the conformance suite every objstore.Store passes:
// the contract of the Store interface written as tests. Run it from a
// backend's (or wrapper's) tests with a function that opens an empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/objstore"
)

// ManyKeys is the number of keys the pagination test writes: more than one
// S3 ListObjectsV2 page (1000 keys).
const ManyKeys = 1100

// Run runs the conformance suite. open returns a new, empty store for one
// subtest; Run closes it.
func Run(t *testing.T, open func(t *testing.T) objstore.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, objstore.Store)
	}{
		{"put then get returns the data", testRoundTrip},
		{"empty object", testEmpty},
		{"overwrite replaces the data", testOverwrite},
		{"get of a missing key is not found", testGetMissing},
		{"put if absent creates once", testPutIfAbsent},
		{"concurrent put if absent has one winner", testPutIfAbsentRace},
		{"get range", testGetRange},
		{"list filters by prefix and sorts", testList},
		{"list paginates", testListMany},
		{"delete is idempotent", testDelete},
		{"nested keys", testNested},
		{"unusual characters in keys", testUnusualKeys},
		{"concurrent puts", testConcurrentPuts},
		{"invalid keys are rejected", testInvalidKeys},
		{"caller owns the slices", testOwnership},
		{"large object", testLarge},
		{"canceled context", testCanceled},
		{"closed store", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func put(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func wantData(t *testing.T, s objstore.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %.32q, want %d bytes %.32q", key, len(got), got, len(want), want)
	}
}

func wantMissing(t *testing.T, s objstore.Store, key string) {
	t.Helper()
	if got, err := s.Get(t.Context(), key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get(%q) = %d bytes, %v; want ErrNotFound", key, len(got), err)
	}
}

func list(t *testing.T, s objstore.Store, prefix string) []objstore.ObjectInfo {
	t.Helper()
	objs, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return objs
}

func keys(objs []objstore.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func wantKeys(t *testing.T, s objstore.Store, prefix string, want ...string) {
	t.Helper()
	if got := keys(list(t, s, prefix)); !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
	}
}

// pattern returns n deterministic, position-dependent bytes, so a range
// read from the wrong offset shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i/251) ^ seed
	}
	return b
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	start := time.Now()
	data := []byte("hello, segment")
	put(t, s, "volumes/v1/segments/s1", data)
	wantData(t, s, "volumes/v1/segments/s1", data)

	objs := list(t, s, "")
	if len(objs) != 1 {
		t.Fatalf("List = %+v, want one object", objs)
	}
	o := objs[0]
	if o.Key != "volumes/v1/segments/s1" || o.Size != int64(len(data)) {
		t.Fatalf("List = %+v, want key volumes/v1/segments/s1, size %d", o, len(data))
	}
	// Clocks of remote servers differ; an hour of slack still catches a
	// zero or garbage time.
	if o.Modified.Before(start.Add(-time.Hour)) || o.Modified.After(time.Now().Add(time.Hour)) {
		t.Fatalf("Modified = %v, want about %v", o.Modified, start)
	}
}

func testEmpty(t *testing.T, s objstore.Store) {
	put(t, s, "empty", nil)
	wantData(t, s, "empty", []byte{})
	if got := list(t, s, "empty"); len(got) != 1 || got[0].Size != 0 {
		t.Fatalf("List(empty) = %+v, want one object of size 0", got)
	}
	got, err := s.GetRange(t.Context(), "empty", 0, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetRange(empty, 0, 0) = %q, %v; want empty, nil", got, err)
	}
	if _, err := s.GetRange(t.Context(), "empty", 0, 1); !errors.Is(err, objstore.ErrRange) {
		t.Fatalf("GetRange(empty, 0, 1) = %v, want ErrRange", err)
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	put(t, s, "k", []byte("first version, longer"))
	put(t, s, "k", []byte("second"))
	wantData(t, s, "k", []byte("second"))
	objs := list(t, s, "")
	if len(objs) != 1 || objs[0].Size != int64(len("second")) {
		t.Fatalf("List = %+v, want one object of size %d", objs, len("second"))
	}
}

func testGetMissing(t *testing.T, s objstore.Store) {
	wantMissing(t, s, "missing")
	put(t, s, "dir/present", []byte("x"))
	wantMissing(t, s, "dir/absent")
	wantMissing(t, s, "dir/present/below")
	wantMissing(t, s, "other/absent")
}

func testPutIfAbsent(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	const key = "volumes/v1/log/00000001"
	if err := s.PutIfAbsent(ctx, key, []byte("first")); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	if err := s.PutIfAbsent(ctx, key, []byte("second")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second PutIfAbsent = %v, want ErrExists", err)
	}
	wantData(t, s, key, []byte("first"))
	wantKeys(t, s, "", key)

	// An object written by Put counts as existing too.
	put(t, s, "plain", []byte("p"))
	if err := s.PutIfAbsent(ctx, "plain", []byte("q")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("PutIfAbsent over Put = %v, want ErrExists", err)
	}
	wantData(t, s, "plain", []byte("p"))

	// Once deleted, the key can be created again.
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.PutIfAbsent(ctx, key, []byte("third")); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	wantData(t, s, key, []byte("third"))
}

func testPutIfAbsentRace(t *testing.T, s objstore.Store) {
	const writers = 16
	const key = "race/log/1"
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.PutIfAbsent(t.Context(), key, fmt.Appendf(nil, "writer %d", i))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created %s", winner, i, key)
		case err == nil:
			winner = i
		case !errors.Is(err, objstore.ErrExists):
			t.Fatalf("writer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer created %s", key)
	}
	wantData(t, s, key, fmt.Appendf(nil, "writer %d", winner))
}

func testGetRange(t *testing.T, s objstore.Store) {
	const size = 1000
	data := pattern(size, 1)
	put(t, s, "seg", data)
	for _, tc := range []struct {
		name   string
		off, n int64
	}{
		{"start", 0, 10},
		{"middle", 123, 456},
		{"end", size - 64, 64},
		{"whole", 0, size},
		{"last byte", size - 1, 1},
		{"zero bytes inside", 10, 0},
		{"zero bytes at the end", size, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetRange(t.Context(), "seg", tc.off, tc.n)
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tc.off, tc.n, err)
			}
			if want := data[tc.off : tc.off+tc.n]; !bytes.Equal(got, want) {
				t.Fatalf("GetRange(%d, %d) = %d bytes, want %d bytes %x...", tc.off, tc.n, len(got), len(want), want[:min(len(want), 8)])
			}
		})
	}
	for _, tc := range []struct {
		name   string
		off, n int64
	}{
		{"runs past the end", size - 10, 11},
		{"starts at the end", size, 1},
		{"starts past the end", size + 100, 10},
		{"zero bytes past the end", size + 1, 0},
		{"negative offset", -1, 10},
		{"negative length", 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetRange(t.Context(), "seg", tc.off, tc.n)
			if !errors.Is(err, objstore.ErrRange) {
				t.Fatalf("GetRange(%d, %d) = %d bytes, %v; want ErrRange", tc.off, tc.n, len(got), err)
			}
		})
	}
	t.Run("missing key", func(t *testing.T) {
		for _, n := range []int64{0, 10} {
			if _, err := s.GetRange(t.Context(), "nope", 0, n); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("GetRange(nope, 0, %d) = %v, want ErrNotFound", n, err)
			}
		}
	})
}

func testList(t *testing.T, s objstore.Store) {
	for _, k := range []string{
		"vol/a/2", "vol/a/10", "vol/a/1", "vol/ab", "vol/b/x", "other/x", "vol.txt",
	} {
		put(t, s, k, []byte(k))
	}
	wantKeys(t, s, "", "other/x", "vol.txt", "vol/a/1", "vol/a/10", "vol/a/2", "vol/ab", "vol/b/x")
	wantKeys(t, s, "vol/a/", "vol/a/1", "vol/a/10", "vol/a/2")
	wantKeys(t, s, "vol/a", "vol/a/1", "vol/a/10", "vol/a/2", "vol/ab")
	wantKeys(t, s, "vol/a/1", "vol/a/1", "vol/a/10")
	wantKeys(t, s, "vol", "vol.txt", "vol/a/1", "vol/a/10", "vol/a/2", "vol/ab", "vol/b/x")
	wantKeys(t, s, "vol/", "vol/a/1", "vol/a/10", "vol/a/2", "vol/ab", "vol/b/x")
	wantKeys(t, s, "nope/")
	wantKeys(t, s, "vol/c")
	wantKeys(t, s, "vol/a/2/")

	for _, o := range list(t, s, "vol/") {
		if o.Size != int64(len(o.Key)) {
			t.Fatalf("List: %s has size %d, want %d", o.Key, o.Size, len(o.Key))
		}
	}
}

// parallel runs fn(i) for i in [0, n) on a few goroutines and returns the
// first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func testListMany(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	want := make([]string, ManyKeys)
	err := parallel(ManyKeys, 16, func(i int) error {
		want[i] = fmt.Sprintf("many/%05d", i)
		return s.Put(ctx, want[i], []byte{byte(i)})
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	put(t, s, "manz", []byte("outside the prefix"))
	put(t, s, "man", []byte("outside the prefix"))

	if got := keys(list(t, s, "many/")); !slices.Equal(got, want) {
		t.Fatalf("List(many/) = %d keys, want %d (first %q, last %q)", len(got), len(want), want[0], want[len(want)-1])
	}
	if got := list(t, s, ""); len(got) != ManyKeys+2 {
		t.Fatalf("List() = %d keys, want %d", len(got), ManyKeys+2)
	}
	if got := keys(list(t, s, "many/010")); len(got) != 100 || got[0] != "many/01000" || got[99] != "many/01099" {
		t.Fatalf("List(many/010) = %d keys, want many/01000..many/01099", len(got))
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	put(t, s, "d/k", []byte("x"))
	put(t, s, "d/keep", []byte("y"))
	for i := range 2 {
		if err := s.Delete(ctx, "d/k"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	wantMissing(t, s, "d/k")
	wantKeys(t, s, "", "d/keep")
	if err := s.Delete(ctx, "never/written"); err != nil {
		t.Fatalf("Delete(never/written): %v", err)
	}
	wantData(t, s, "d/keep", []byte("y"))
}

func testNested(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	deep := "volumes/v1/segments/2024/01/02/s1"
	put(t, s, deep, []byte("deep"))
	put(t, s, "volumes/v1/segments/2024/01/03/s2", []byte("sibling"))
	put(t, s, "volumes/v1/log/1", []byte("log"))
	wantData(t, s, deep, []byte("deep"))
	wantKeys(t, s, "volumes/v1/segments/", deep, "volumes/v1/segments/2024/01/03/s2")
	wantKeys(t, s, "volumes/v1/segments/2024/01/02/", deep)

	if err := s.Delete(ctx, deep); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMissing(t, s, deep)
	wantKeys(t, s, "volumes/", "volumes/v1/log/1", "volumes/v1/segments/2024/01/03/s2")
	// The key can be written again where its parents were emptied.
	put(t, s, deep, []byte("again"))
	wantData(t, s, deep, []byte("again"))
}

func testUnusualKeys(t *testing.T, s objstore.Store) {
	ks := []string{
		"with space/and+plus",
		"percent%20and=equals&amp",
		"question?hash#",
		"ünïcødé/日本",
		"tilde~/dot.file/.hidden",
		"a...b/-_/...",
		"semi;colon,comma'quote\"",
	}
	for _, k := range ks {
		put(t, s, k, []byte(k))
	}
	for _, k := range ks {
		wantData(t, s, k, []byte(k))
	}
	want := slices.Clone(ks)
	slices.Sort(want)
	wantKeys(t, s, "", want...)
	wantKeys(t, s, "with space/", "with space/and+plus")
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	const n = 64
	const shared = "shared/key"
	version := func(i int) []byte { return pattern(4096+i, byte(i)) }
	err := parallel(2*n, 16, func(i int) error {
		if i%2 == 0 {
			return s.Put(ctx, fmt.Sprintf("own/%03d", i/2), version(i/2))
		}
		return s.Put(ctx, shared, version(i/2))
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	for i := range n {
		wantData(t, s, fmt.Sprintf("own/%03d", i), version(i))
	}
	// The shared key holds one writer's data in full, never a mix.
	got, err := s.Get(ctx, shared)
	if err != nil {
		t.Fatalf("Get(shared): %v", err)
	}
	i := len(got) - 4096
	if i < 0 || i >= n || !bytes.Equal(got, version(i)) {
		t.Fatalf("Get(shared) = %d bytes, not one writer's data", len(got))
	}
	if objs := list(t, s, ""); len(objs) != n+1 {
		t.Fatalf("List = %d objects, want %d", len(objs), n+1)
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	for _, k := range []string{
		"", "/abs", "trailing/", "a//b", "./a", "a/./b", "../a", "a/..", "nul\x00", "tab\tkey",
		"bad utf8 \xff", string(make([]byte, objstore.MaxKeyLen+1)),
	} {
		if err := s.Put(ctx, k, []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.PutIfAbsent(ctx, k, []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("PutIfAbsent(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(ctx, k); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.GetRange(ctx, k, 0, 1); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("GetRange(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	for _, p := range []string{"/abs", "a//", "../", "a/../b", "nul\x00"} {
		if _, err := s.List(ctx, p); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
	wantKeys(t, s, "")
}

func testOwnership(t *testing.T, s objstore.Store) {
	in := []byte("original")
	put(t, s, "k", in)
	copy(in, "XXXXXXXX")
	got, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(got) != "original" {
		t.Fatalf("Get after changing Put's input = %q, want %q", got, "original")
	}
	copy(got, "YYYYYYYY")
	wantData(t, s, "k", []byte("original"))
	r, err := s.GetRange(t.Context(), "k", 0, 4)
	if err != nil {
		t.Fatalf("GetRange: %v", err)
	}
	copy(r, "ZZZZ")
	wantData(t, s, "k", []byte("original"))
}

func testLarge(t *testing.T, s objstore.Store) {
	data := pattern(5<<20+3, 9)
	put(t, s, "large", data)
	wantData(t, s, "large", data)
	off := int64(len(data) - 70000)
	got, err := s.GetRange(t.Context(), "large", off, 70000)
	if err != nil {
		t.Fatalf("GetRange: %v", err)
	}
	if !bytes.Equal(got, data[off:]) {
		t.Fatalf("GetRange of the tail returned other bytes")
	}
}

func testCanceled(t *testing.T, s objstore.Store) {
	put(t, s, "k", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", op, err)
		}
	}
	check("Put", s.Put(ctx, "k2", []byte("y")))
	check("PutIfAbsent", s.PutIfAbsent(ctx, "k3", []byte("y")))
	_, err := s.Get(ctx, "k")
	check("Get", err)
	_, err = s.GetRange(ctx, "k", 0, 1)
	check("GetRange", err)
	_, err = s.List(ctx, "")
	check("List", err)
	check("Delete", s.Delete(ctx, "k"))
	wantKeys(t, s, "", "k")
}

func testClosed(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	put(t, s, "k", []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, objstore.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
	check("Put", s.Put(ctx, "k2", []byte("y")))
	check("PutIfAbsent", s.PutIfAbsent(ctx, "k3", []byte("y")))
	_, err := s.Get(ctx, "k")
	check("Get", err)
	_, err = s.GetRange(ctx, "k", 0, 1)
	check("GetRange", err)
	_, err = s.List(ctx, "")
	check("List", err)
	check("Delete", s.Delete(ctx, "k"))
}
