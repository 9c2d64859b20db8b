package objstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/graft-cluster/graft/objstore"
)

func openFile(t *testing.T, dir string) objstore.Store {
	t.Helper()
	return open(t, "file://"+dir)
}

// The layout on disk is the key space: a reader needs nothing but the
// directory.
func TestFile_Layout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openFile(t, dir)
	if err := s.Put(t.Context(), "volumes/v1/segments/s1", []byte("seg")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "volumes", "v1", "segments", "s1"))
	if err != nil || string(got) != "seg" {
		t.Fatalf("file holds %q, %v; want seg", got, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "volumes", "v1", "segments"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v, %v; want only s1 (no temporary files left)", entries, err)
	}
}

func TestFile_SurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openFile(t, dir)
	if err := s.PutIfAbsent(t.Context(), "log/1", []byte("rec")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openFile(t, dir)
	if got, err := s2.Get(t.Context(), "log/1"); err != nil || string(got) != "rec" {
		t.Fatalf("Get after reopen = %q, %v", got, err)
	}
	if err := s2.PutIfAbsent(t.Context(), "log/1", []byte("other")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("PutIfAbsent after reopen = %v, want ErrExists", err)
	}
}

// A crash mid-write leaves a temporary file; it is never an object.
func TestFile_IgnoresTemporaryFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openFile(t, dir)
	if err := s.Put(t.Context(), "d/k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", ".objstore-tmp-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(t.Context(), "")
	if err != nil || len(objs) != 1 || objs[0].Key != "d/k" {
		t.Fatalf("List = %+v, %v; want only d/k", objs, err)
	}
	if err := s.Put(t.Context(), "d/.objstore-tmp-9", []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Put of a reserved name = %v, want ErrInvalidKey", err)
	}
}

func TestFile_KeyCannotBeDirectory(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openFile(t, t.TempDir())
	if err := s.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a", []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Put(a) over directory a = %v, want ErrInvalidKey", err)
	}
	if err := s.PutIfAbsent(ctx, "a", []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("PutIfAbsent(a) over directory a = %v, want ErrInvalidKey", err)
	}
	if err := s.Put(ctx, "a/b/c", []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Put(a/b/c) below file a/b = %v, want ErrInvalidKey", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get(a) = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete(a) = %v, want nil (no such object)", err)
	}
	if got, err := s.Get(ctx, "a/b"); err != nil || string(got) != "x" {
		t.Fatalf("Get(a/b) = %q, %v; want it untouched", got, err)
	}
}

func TestFile_DeleteRemovesEmptyDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openFile(t, dir)
	ctx := t.Context()
	for _, k := range []string{"v/1/segments/s1", "v/1/log/1"} {
		if err := s.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "v/1/segments/s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "v", "1", "segments")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty directory v/1/segments: stat = %v, want it removed", err)
	}
	if err := s.Delete(ctx, "v/1/log/1"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("root holds %v, %v; want it empty", entries, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("root itself: %v, want it kept", err)
	}
}

// Puts and Deletes race in one directory: a Delete emptying and removing
// the directory must never fail a Put into it.
func TestFile_PutDeleteChurn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openFile(t, t.TempDir())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("churn/d%d/k%d", i%2, g)
				if err := s.Put(ctx, key, []byte("x")); err != nil {
					errs <- err
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if objs, err := s.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("List = %+v, %v; want empty", objs, err)
	}
}

func TestFile_NoSync(t *testing.T) {
	t.Parallel()
	c := objstore.DefaultConfig()
	c.NoSync = true
	s, err := objstore.NewFile(t.TempDir(), objstore.WithConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(t.Context(), "k"); err != nil || string(got) != "x" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := objstore.NewFile("relative/dir"); !errors.Is(err, objstore.ErrInvalidURL) {
		t.Fatalf("NewFile(relative) = %v, want ErrInvalidURL", err)
	}
}
