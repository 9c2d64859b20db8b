package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

// tmpPrefix starts the name of a file being written. List skips such files
// and keys may not have a segment starting with it, so a temporary file
// left by a crash never shows up as an object.
const tmpPrefix = ".objstore-tmp-"

// fileStore keeps key k in the file root/k.
//
// Writes go to a temporary file in the target's directory, which is
// fsynced, then renamed (Put) or hard-linked (PutIfAbsent: link fails if
// the target exists, atomically) into place, and the directory is fsynced.
// Directories are created on demand (each new one fsynced into its parent)
// and removed by Delete once empty.
//
// One limitation has no S3 counterpart: a key cannot also be a directory of
// other keys ("a" and "a/b"); writing one when the other exists fails with
// ErrInvalidKey.
type fileStore struct {
	root   string
	noSync bool
	closed atomic.Bool
}

func newFile(root string, cfg Config) (*fileStore, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open file store: %s is not a directory", root)
	}
	return &fileStore{root: root, noSync: cfg.NoSync}, nil
}

// NewFile is Open for file:// URLs: it returns a Store keeping its objects
// as files under the directory dir (absolute), created if needed.
func NewFile(dir string, opts ...Option) (Store, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%w: file store directory %q is not absolute", ErrInvalidURL, dir)
	}
	return newFile(filepath.Clean(dir), cfg)
}

func (s *fileStore) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ValidateKey(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, tmpPrefix) {
			return fmt.Errorf("%w: %q: segments starting with %q are reserved by the file store", ErrInvalidKey, key, tmpPrefix)
		}
	}
	return nil
}

func (s *fileStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

func (s *fileStore) Put(ctx context.Context, key string, data []byte) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.write(key, data, false); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (s *fileStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	if err := s.write(key, data, true); err != nil {
		return fmt.Errorf("put %s if absent: %w", key, err)
	}
	return nil
}

// write writes data to a temporary file next to key's file and moves it
// into place: rename replaces, link (exclusive) fails if key exists.
func (s *fileStore) write(key string, data []byte, exclusive bool) (err error) {
	p := s.path(key)
	dir := filepath.Dir(p)
	f, err := s.createTemp(dir)
	if err != nil {
		return s.conflict(key, err)
	}
	tmp := f.Name()
	placed := false
	defer func() {
		if !placed {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if !s.noSync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if exclusive {
		err = os.Link(tmp, p)
		// The temporary name goes whatever link did: on success the data
		// lives on under p.
		_ = os.Remove(tmp)
		placed = true
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Lstat(p); serr == nil && fi.IsDir() {
				return s.conflict(key, err)
			}
			return ErrExists
		}
	} else {
		err = os.Rename(tmp, p)
		placed = err == nil
	}
	if err != nil {
		return s.conflict(key, err)
	}
	return s.syncDir(dir)
}

// conflict turns the errors of a key that is a directory, or whose parent
// is a file, into ErrInvalidKey.
func (s *fileStore) conflict(key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %q collides with another key: the file store cannot hold both \"a\" and \"a/b\": %w", ErrInvalidKey, key, err)
	}
	return err
}

// createTemp creates a temporary file in dir, creating dir as needed. A
// concurrent Delete may remove an empty dir between the two steps, so it
// retries.
func (s *fileStore) createTemp(dir string) (*os.File, error) {
	var err error
	for range 10 {
		var f *os.File
		if err = s.mkdirAll(dir); err == nil {
			f, err = os.CreateTemp(dir, tmpPrefix+"*")
		}
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// mkdirAll creates dir and its missing parents below the root, fsyncing
// each new directory's entry into its parent.
func (s *fileStore) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if dir == s.root || len(dir) < len(s.root) {
		return os.MkdirAll(dir, 0o755)
	}
	parent := filepath.Dir(dir)
	if err := s.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // a concurrent writer made it; createTemp checks it is a directory
		}
		return err
	}
	return s.syncDir(parent)
}

func (s *fileStore) syncDir(dir string) error {
	if s.noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// open opens key's file for reading, mapping a missing file, a directory
// and a file where a directory should be to ErrNotFound.
func (s *fileStore) open(key string) (*os.File, int64, error) {
	f, err := os.Open(s.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, 0, ErrNotFound
	}
	return f, fi.Size(), nil
}

func (s *fileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, size, err := s.open(key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer f.Close()
	// Files are replaced, never rewritten in place, so the size of an open
	// file does not change.
	buf := make([]byte, size)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return buf, nil
}

func (s *fileStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, err)
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, ErrRange)
	}
	f, size, err := s.open(key)
	if err != nil {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, err)
	}
	defer f.Close()
	if off > size || n > size-off {
		return nil, fmt.Errorf("get %s [%d, +%d) of %d bytes: %w", key, off, n, size, ErrRange)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && off+n == size) {
		return nil, fmt.Errorf("get %s [%d, +%d): %w", key, off, n, err)
	}
	return buf, nil
}

func (s *fileStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("list %s: %w", prefix, ErrClosed)
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	// Walk from the deepest directory the prefix names in full.
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = s.path(prefix[:i])
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A directory or file removed during the walk is simply gone.
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p == start {
				return nil
			}
			// Skip directories that cannot hold a key with the prefix.
			dirKey := key + "/"
			if !strings.HasPrefix(dirKey, prefix) && !strings.HasPrefix(prefix, dirKey) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (s *fileStore) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a directory of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	if err := s.syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// Remove directories left empty, up to the root. Rmdir (not Remove)
	// never deletes a file, should a key take a directory's name meanwhile;
	// it fails on a non-empty directory, which ends the climb.
	for d := dir; d != s.root && len(d) > len(s.root); d = filepath.Dir(d) {
		if syscall.Rmdir(d) != nil {
			break
		}
	}
	return nil
}

func (s *fileStore) Close() error {
	s.closed.Store(true)
	return nil
}
