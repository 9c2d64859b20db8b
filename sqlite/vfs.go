package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/util/vfsutil"
	"github.com/ncruces/go-sqlite3/vfs"

	"github.com/graft-cluster/graft/volume"
)

// VFSName is the name the VFS registers under (vfs=graft in a DSN).
const VFSName = "graft"

// DefaultTimeout bounds one VFS operation that may reach the cluster (a page
// fetch, a commit and its push); graft_timeout in a DSN overrides it.
const DefaultTimeout = 30 * time.Second

func init() {
	vfs.Register(VFSName, graftVFS{})
}

var logger struct {
	mu sync.Mutex
	l  *slog.Logger
}

// SetLogger sets the logger of the VFS (default slog.Default()).
func SetLogger(l *slog.Logger) {
	logger.mu.Lock()
	logger.l = l
	logger.mu.Unlock()
}

func getLogger() *slog.Logger {
	logger.mu.Lock()
	defer logger.mu.Unlock()
	if logger.l == nil {
		return slog.Default()
	}
	return logger.l
}

// source opens volumes: a client runtime.
type source interface {
	open(ctx context.Context, vid volume.ID) (backend, error)
}

type sourceEntry struct {
	src   source
	refs  int // open volumes using it (dir sources only)
	owned bool
	close func() error
	desc  string // endpoints, for a mismatch error
}

type volKey struct {
	src string
	vid volume.ID
}

// registry is the process-wide state: named sources (RegisterRuntime),
// sources opened from graft_dir (refcounted, closed with their last volume),
// and one shared per open volume.
var registry struct {
	mu    sync.Mutex
	named map[string]*sourceEntry
	dirs  map[string]*sourceEntry
	vols  map[volKey]*shared
}

// registerSource makes src available as graft_runtime=name.
func registerSource(name string, src source) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.named == nil {
		registry.named = map[string]*sourceEntry{}
	}
	registry.named[name] = &sourceEntry{src: src}
}

// unregisterSource removes a named source; open databases keep using it.
func unregisterSource(name string) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	delete(registry.named, name)
}

// openDirSource opens the runtime behind graft_dir; set by the client adapter.
var openDirSource func(dir string, endpoints []string) (source, func() error, error)

// params are the graft_* DSN parameters.
type params struct {
	runtime   string
	dir       string
	endpoints []string
	mode      syncMode
	timeout   time.Duration
	maxPages  int
}

// DefaultMaxPages is graft_max_pages' default: the cluster's default
// MaxPagesPerCommit.
const DefaultMaxPages = 256

func parseParams(get func(string) string) (params, error) {
	p := params{runtime: get("graft_runtime"), dir: get("graft_dir"), timeout: DefaultTimeout, maxPages: DefaultMaxPages}
	if e := get("graft_endpoints"); e != "" {
		for _, u := range strings.Split(e, ",") {
			if u = strings.TrimSpace(u); u != "" {
				p.endpoints = append(p.endpoints, u)
			}
		}
	}
	switch s := get("graft_sync"); s {
	case "", "remote":
		p.mode = syncRemote
	case "local":
		p.mode = syncLocal
	default:
		return p, fmt.Errorf("%w: graft_sync=%q, want remote or local", ErrBadDSN, s)
	}
	if t := get("graft_timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return p, fmt.Errorf("%w: graft_timeout=%q is not a positive duration", ErrBadDSN, t)
		}
		p.timeout = d
	}
	if m := get("graft_max_pages"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return p, fmt.Errorf("%w: graft_max_pages=%q is not a count (0: no limit)", ErrBadDSN, m)
		}
		p.maxPages = n
	}
	switch {
	case p.runtime != "" && p.dir != "":
		return p, fmt.Errorf("%w: graft_runtime and graft_dir are exclusive", ErrBadDSN)
	case p.runtime == "" && p.dir == "":
		return p, fmt.Errorf("%w: need graft_dir=DIR (and graft_endpoints=URL,...) or graft_runtime=NAME", ErrBadDSN)
	}
	return p, nil
}

type graftVFS struct{}

var _ vfs.VFSFilename = graftVFS{}

func (graftVFS) Open(name string, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	return graftVFS{}.OpenFilename(nil, flags)
}

// OpenFilename opens the main database as its volume; every other file
// (journals, temp files) lives in memory.
func (graftVFS) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	if name == nil || flags&vfs.OPEN_MAIN_DB == 0 {
		return &vfsutil.SliceFile{}, flags | vfs.OPEN_MEMORY, nil
	}
	f, err := openMain(name.String(), name.URIParameter, flags)
	if err != nil {
		return nil, flags, vfs.SystemError(err, sqlite3.CANTOPEN)
	}
	// OPEN_MEMORY: SQLite keeps the journal in memory and never asks for one.
	return f, flags | vfs.OPEN_MEMORY, nil
}

func (graftVFS) Delete(string, bool) error { return sqlite3.IOERR_DELETE_NOENT }

func (graftVFS) Access(string, vfs.AccessFlag) (bool, error) { return false, nil }

func (graftVFS) FullPathname(name string) (string, error) { return name, nil }

func openMain(path string, get func(string) string, flags vfs.OpenFlag) (*file, error) {
	vid, err := volume.ParseID(strings.TrimPrefix(path, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: database name %q is not a volume ID: %w", ErrBadDSN, path, err)
	}
	p, err := parseParams(get)
	if err != nil {
		return nil, err
	}
	s, err := acquire(p, vid)
	if err != nil {
		return nil, err
	}
	f := &file{s: s, mode: p.mode, timeout: p.timeout, maxPages: p.maxPages, readOnly: flags&vfs.OPEN_READONLY != 0}
	if err := f.checkDatabase(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkDatabase refuses a volume whose page 1 is not a SQLite header with
// 4096-byte pages; an empty volume is a new database.
func (f *file) checkDatabase() error {
	r := f.s.b.Reader()
	if r.Snapshot().PageCount == 0 {
		return nil
	}
	ctx, cancel := f.ctx()
	defer cancel()
	p1, err := r.ReadPage(ctx, 1)
	if err != nil {
		return fmt.Errorf("graft: read page 1 of %s: %w", f.s.b.VID(), err)
	}
	if err := checkHeader(p1); err != nil {
		return fmt.Errorf("volume %s: %w", f.s.b.VID(), err)
	}
	return nil
}

// acquire returns the shared state of vid in the source p names, opening
// both as needed.
func acquire(p params, vid volume.ID) (*shared, error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var (
		key string
		se  *sourceEntry
	)
	if p.runtime != "" {
		key = "runtime:" + p.runtime
		se = registry.named[p.runtime]
		if se == nil {
			return nil, fmt.Errorf("%w: graft_runtime=%q is not registered", ErrBadDSN, p.runtime)
		}
	} else {
		key = "dir:" + p.dir
		desc := strings.Join(p.endpoints, ",")
		se = registry.dirs[p.dir]
		if se != nil && desc != "" && se.desc != desc {
			return nil, fmt.Errorf("%w: graft_dir=%q is open with graft_endpoints=%q, not %q", ErrBadDSN, p.dir, se.desc, desc)
		}
		if se == nil {
			if openDirSource == nil {
				return nil, fmt.Errorf("%w: graft_dir is not available in this build", ErrBadDSN)
			}
			src, closeFn, err := openDirSource(p.dir, p.endpoints)
			if err != nil {
				return nil, fmt.Errorf("graft: open replica dir %s: %w", p.dir, err)
			}
			se = &sourceEntry{src: src, owned: true, close: closeFn, desc: desc}
			if registry.dirs == nil {
				registry.dirs = map[string]*sourceEntry{}
			}
			registry.dirs[p.dir] = se
		}
	}
	vk := volKey{src: key, vid: vid}
	if s := registry.vols[vk]; s != nil {
		s.refs++
		return s, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	b, err := se.src.open(ctx, vid)
	if err != nil {
		if se.owned && se.refs == 0 {
			delete(registry.dirs, p.dir)
			if cerr := se.close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return nil, fmt.Errorf("graft: open volume %s: %w", vid, err)
	}
	se.refs++
	s := &shared{b: b, key: vk, src: se, dir: p.dir, log: getLogger(), wlock: make(chan struct{}, 1), refs: 1}
	s.cond = sync.NewCond(&s.mu)
	if registry.vols == nil {
		registry.vols = map[volKey]*shared{}
	}
	registry.vols[vk] = s
	return s, nil
}

// shared is the per-process state of one open volume: the write lock every
// connection shares, the gate that holds new readers while a remote commit
// is pushed, and the background pusher of graft_sync=local.
type shared struct {
	b   backend
	key volKey
	src *sourceEntry
	dir string
	log *slog.Logger

	wlock chan struct{} // holds a token while a connection is RESERVED or above
	refs  int           // guarded by registry.mu

	mu      sync.Mutex
	cond    *sync.Cond
	pushing bool // a graft_sync=remote commit is between local commit and ack
	waiting int  // read transactions waiting for it (tests observe it)

	pushOnce sync.Once
	kick     chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func (s *shared) tryLockWrite() bool {
	select {
	case s.wlock <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *shared) lockWrite(ctx context.Context) error {
	select {
	case s.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("graft: wait for the write lock of %s: %w", s.b.VID(), ctx.Err())
	}
}

func (s *shared) unlockWrite() { <-s.wlock }

func (s *shared) writeLocked() bool { return len(s.wlock) > 0 }

func (s *shared) beginPush() {
	s.mu.Lock()
	s.pushing = true
	s.mu.Unlock()
}

func (s *shared) endPush() {
	s.mu.Lock()
	s.pushing = false
	s.mu.Unlock()
	s.cond.Broadcast()
}

// waitPushed blocks while a remote commit of this process is being pushed
// (bounded by that commit's timeout).
func (s *shared) waitPushed() {
	s.mu.Lock()
	for s.pushing {
		s.waiting++
		s.cond.Wait()
		s.waiting--
	}
	s.mu.Unlock()
}

// kickPush asks the background pusher to push (graft_sync=local).
func (s *shared) kickPush() {
	s.pushOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.kick = make(chan struct{}, 1)
		s.cancel = cancel
		s.wg.Add(1)
		go s.pushLoop(ctx)
	})
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// pushLoop pushes after each kick; a failed push is retried with backoff, a
// rejection waits for the next kick (the volume needs graft_reset or
// graft_fork first).
func (s *shared) pushLoop(ctx context.Context) {
	defer s.wg.Done()
	const maxBackoff = 30 * time.Second
	backoff := 250 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		pctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
		err := s.b.Push(pctx)
		cancel()
		switch {
		case err == nil:
			backoff = 250 * time.Millisecond
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, errRemoteRejected):
			s.log.Warn("graft: background push rejected; run PRAGMA graft_reset (drop local commits) or graft_fork (keep them in a new volume)", "vid", s.b.VID(), "err", err)
			continue
		}
		s.log.Warn("graft: background push failed; retrying", "vid", s.b.VID(), "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// release drops one connection's reference; the last one stops the
// pusher and releases the source (closing a graft_dir runtime with its last volume).
func (s *shared) release() {
	registry.mu.Lock()
	s.refs--
	if s.refs > 0 {
		registry.mu.Unlock()
		return
	}
	delete(registry.vols, s.key)
	var closeFn func() error
	if s.src.refs--; s.src.owned && s.src.refs == 0 {
		delete(registry.dirs, s.dir)
		closeFn = s.src.close
	}
	registry.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
	if closeFn != nil {
		if err := closeFn(); err != nil {
			s.log.Warn("graft: close replica", "dir", s.dir, "err", err)
		}
	}
}
