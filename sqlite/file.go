package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"

	"github.com/graft-cluster/graft/volume"
)

const (
	pageSize = volume.PageSize
	// Offsets in the SQLite header (page 1).
	hdrPageSize      = 16 // 2 bytes, big-endian; 1 means 65536
	hdrChangeCounter = 24 // 4 bytes: file change counter
	hdrDBSize        = 28 // 4 bytes: in-header database size in pages
	hdrVersionValid  = 92 // 4 bytes: version-valid-for number
	// hdrNonce is where graft stamps a random nonce into every commit (8 of
	// the 20 bytes the format reserves for expansion, 72-91; reads show
	// them as zeros, so SQLite never sees it). Without it two transactions
	// that write the same bytes on the same head are the same commit (same
	// hash), and the cluster's idempotency acknowledges both while applying
	// one: one acknowledged transaction lost.
	hdrNonce    = 72
	hdrNonceLen = 8
	sqliteMagic = "SQLite format 3\x00"
)

// syncMode is graft_sync.
type syncMode int

const (
	syncRemote syncMode = iota // COMMIT returns after the cluster acked the push
	syncLocal                  // COMMIT returns after the local commit; push in the background
)

// file is the main database file of one SQLite connection: a view of one
// volume. SQLite serializes the calls on one file (one connection), so its
// fields need no lock; state shared between connections lives in shared.
type file struct {
	s        *shared
	mode     syncMode
	timeout  time.Duration
	readOnly bool

	lock vfs.LockLevel
	rd   pageReader // pinned at SHARED
	wr   pageWriter // at RESERVED and above, until commit or rollback

	dirty     bool                        // wr has writes
	written   map[volume.PageIdx]struct{} // pages wr has written
	maxPages  int                         // graft_max_pages: refuse bigger remote commits (0: no limit)
	committed bool                        // wr was committed (this lock epoch)
	deferred  error                       // a commit failure phase one let pass, answered in phase two
	// failed is the error CommitPhaseTwo answered, repeated by the unlocks
	// that follow: the driver reports the system error of the connection's
	// last VFS call, and SQLite unlocks after a failed commit.
	failed error

	// seenCounter is the change counter SQLite holds for this connection
	// (the last one it read or wrote at offset 24); own is the snapshot
	// this connection's last commit made and ownCounter the counter then.
	seenCounter uint32
	own         snapshot
	ownCounter  uint32
}

var (
	_ vfs.FileLockState        = (*file)(nil)
	_ vfs.FileBatchAtomicWrite = (*file)(nil)
	_ vfs.FileCommitPhaseTwo   = (*file)(nil)
	_ vfs.FilePragma           = (*file)(nil)
	_ vfs.FileSizeHint         = (*file)(nil)
)

func (f *file) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), f.timeout)
}

// Close releases the connection's locks and its reference to the volume.
func (f *file) Close() error {
	if f.s == nil {
		return nil
	}
	if f.lock >= vfs.LOCK_RESERVED {
		f.s.unlockWrite()
	}
	f.rd, f.wr, f.lock = nil, nil, vfs.LOCK_NONE
	s := f.s
	f.s = nil
	s.release()
	return nil
}

// source is what reads see: the writer in a write transaction, the pinned
// snapshot in a read transaction, the latest snapshot without a lock.
func (f *file) source() (pageReader, uint32) {
	switch {
	case f.wr != nil:
		return f.wr, f.wr.PageCount()
	case f.rd != nil:
		return f.rd, f.rd.Snapshot().PageCount
	default:
		r := f.s.b.Reader()
		return r, r.Snapshot().PageCount
	}
}

// ReadAt reads from the volume; bytes past the page count read as a short read.
func (f *file) ReadAt(b []byte, off int64) (int, error) {
	src, pages := f.source()
	size := int64(pages) * pageSize
	counter := f.counterFor(src.Snapshot())
	ctx, cancel := f.ctx()
	defer cancel()
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		if pos >= size {
			clear(b[n:])
			return n, io.EOF
		}
		idx := volume.PageIdx(pos/pageSize + 1)
		in := int(pos % pageSize)
		page, err := src.ReadPage(ctx, idx)
		if err != nil {
			return n, vfs.SystemError(fmt.Errorf("graft: read page %d of %s: %w", idx, f.s.b.VID(), err), sqlite3.IOERR_READ)
		}
		c := copy(b[n:], page[in:])
		if idx == 1 {
			patchCounters(b[n:n+c], in, counter)
			if in <= hdrChangeCounter && in+c >= hdrChangeCounter+4 {
				f.seenCounter = counter
			}
		}
		n += c
	}
	return n, nil
}

// counterFor is the change counter reads of s show this connection: the
// snapshot's, except for the snapshot this connection committed itself,
// whose content its cache already holds: there it is the counter SQLite
// last saw or wrote, so the connection keeps its cache after its own
// commits while every other connection flushes.
func (f *file) counterFor(s snapshot) uint32 {
	if f.own.VID == s.VID && (f.own.LocalLSN == s.LocalLSN || plantedOwnCounter) && f.own.LocalLSN != 0 {
		return f.ownCounter
	}
	return changeCounter(s)
}

// changeCounter derives the header's change counter from a snapshot's local
// version (local LSNs only grow), so a connection whose cache predates the
// snapshot flushes it; a push (RemoteLSN only) does not.
func changeCounter(s snapshot) uint32 {
	h := fnv.New32a()
	var buf [20]byte
	h.Write(s.VID[:])
	binary.BigEndian.PutUint64(buf[0:], uint64(s.LocalLSN))
	binary.BigEndian.PutUint32(buf[8:], s.PageCount)
	h.Write(buf[:12])
	return h.Sum32()
}

// patchCounters overwrites the change counter and the version-valid-for
// number within buf, which holds page 1's bytes from offset in.
func patchCounters(buf []byte, in int, counter uint32) {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], counter)
	for _, field := range []int{hdrChangeCounter, hdrVersionValid} {
		for j := range 4 {
			if p := field + j - in; p >= 0 && p < len(buf) {
				buf[p] = c[j]
			}
		}
	}
	for j := range hdrNonceLen {
		if p := hdrNonce + j - in; p >= 0 && p < len(buf) {
			buf[p] = 0
		}
	}
}

// headerEqual reports whether two page-1 images differ at most in the
// change counter and the version-valid-for number.
func headerEqual(a, b []byte) bool {
	return bytes.Equal(a[:hdrChangeCounter], b[:hdrChangeCounter]) &&
		bytes.Equal(a[hdrChangeCounter+4:hdrNonce], b[hdrChangeCounter+4:hdrNonce]) &&
		bytes.Equal(a[hdrNonce+hdrNonceLen:hdrVersionValid], b[hdrNonce+hdrNonceLen:hdrVersionValid]) &&
		bytes.Equal(a[hdrVersionValid+4:], b[hdrVersionValid+4:])
}

// stampNonce writes a fresh random nonce into page 1 of the transaction,
// so its commit is unique even when another replica's transaction wrote
// the same bytes on the same head (see hdrNonce).
func (f *file) stampNonce(ctx context.Context) error {
	if f.wr.PageCount() < 1 {
		return nil
	}
	cur, err := f.wr.ReadPage(ctx, 1)
	if err != nil {
		return fmt.Errorf("graft: read page 1 of %s: %w", f.s.b.VID(), err)
	}
	page := bytes.Clone(cur)
	if _, err := rand.Read(page[hdrNonce : hdrNonce+hdrNonceLen]); err != nil {
		return fmt.Errorf("graft: commit nonce: %w", err)
	}
	if err := f.wr.WritePage(1, page); err != nil {
		return fmt.Errorf("graft: write page 1 of %s: %w", f.s.b.VID(), err)
	}
	f.written[1] = struct{}{}
	return nil
}

// checkHeader verifies a page 1 image is a SQLite header with 4096-byte pages.
func checkHeader(page []byte) error {
	if !bytes.HasPrefix(page, []byte(sqliteMagic)) {
		return fmt.Errorf("%w: page 1 does not start with %q", ErrNotDatabase, sqliteMagic[:15])
	}
	if ps := int(binary.BigEndian.Uint16(page[hdrPageSize:])); ps != pageSize {
		if ps == 1 {
			ps = 65536
		}
		return fmt.Errorf("%w: the database's page size is %d", ErrPageSize, ps)
	}
	return nil
}

// WriteAt stages writes in the transaction's writer.
func (f *file) WriteAt(b []byte, off int64) (int, error) {
	if f.wr == nil {
		return 0, vfs.SystemError(errors.New("graft: write outside a write transaction"), sqlite3.IOERR_WRITE)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		idx := volume.PageIdx(pos/pageSize + 1)
		in := int(pos % pageSize)
		c := min(len(b)-n, pageSize-in)
		page := make([]byte, pageSize)
		if in != 0 || c != pageSize || idx == 1 {
			cur, err := f.wr.ReadPage(ctx, idx)
			if err != nil {
				return n, vfs.SystemError(fmt.Errorf("graft: read page %d of %s: %w", idx, f.s.b.VID(), err), sqlite3.IOERR_WRITE)
			}
			copy(page, cur)
			if idx == 1 && f.wr.PageCount() >= 1 {
				copy(page[in:], b[n:n+c])
				f.seenCounter = binary.BigEndian.Uint32(page[hdrChangeCounter:])
				if headerEqual(page, cur) {
					n += c // only the counters changed: they are derived on read
					continue
				}
			}
		}
		copy(page[in:], b[n:n+c])
		if idx == 1 {
			f.seenCounter = binary.BigEndian.Uint32(page[hdrChangeCounter:])
			if err := checkHeader(page); err != nil {
				return n, vfs.SystemError(err, sqlite3.IOERR_WRITE)
			}
		}
		if uint32(idx) > f.wr.PageCount() {
			f.wr.SetPageCount(uint32(idx))
		}
		if err := f.wr.WritePage(idx, page); err != nil {
			return n, vfs.SystemError(fmt.Errorf("graft: write page %d of %s: %w", idx, f.s.b.VID(), err), sqlite3.IOERR_WRITE)
		}
		f.dirty = true
		f.written[idx] = struct{}{}
		n += c
	}
	return n, nil
}

// Truncate sets the page count.
func (f *file) Truncate(size int64) error {
	if size%pageSize != 0 {
		return vfs.SystemError(fmt.Errorf("%w: truncate to %d bytes", ErrPageSize, size), sqlite3.IOERR_TRUNCATE)
	}
	if f.wr == nil {
		if f.committed && f.rd != nil && int64(f.rd.Snapshot().PageCount)*pageSize == size {
			return nil // the commit already has this size (set from the header)
		}
		return vfs.SystemError(errors.New("graft: truncate outside a write transaction"), sqlite3.IOERR_TRUNCATE)
	}
	if uint32(size/pageSize) != f.wr.PageCount() {
		f.wr.SetPageCount(uint32(size / pageSize))
		f.dirty = true
	}
	return nil
}

// SizeHint is a no-op: pages are allocated as they are written.
func (f *file) SizeHint(int64) error { return nil }

// Sync is a no-op: the commit is the durability point.
func (f *file) Sync(vfs.SyncFlag) error { return nil }

// Size is the page count of what reads see.
func (f *file) Size() (int64, error) {
	_, pages := f.source()
	return int64(pages) * pageSize, nil
}

// Lock: SHARED pins a snapshot; RESERVED takes the volume's write lock and
// checks the pinned snapshot is still the latest.
func (f *file) Lock(level vfs.LockLevel) error {
	if f.lock >= level {
		return nil
	}
	if f.lock == vfs.LOCK_NONE {
		if f.mode == syncRemote {
			f.s.waitPushed()
		}
		f.rd = f.s.b.Reader()
		f.lock = vfs.LOCK_SHARED
	}
	if level >= vfs.LOCK_RESERVED && f.lock < vfs.LOCK_RESERVED {
		if f.readOnly {
			return sqlite3.READONLY
		}
		if !f.s.tryLockWrite() {
			if !sameVersion(f.s.b.Snapshot(), f.rd.Snapshot()) {
				return sqlite3.BUSY_SNAPSHOT
			}
			return sqlite3.BUSY
		}
		wr := f.s.b.Writer()
		if !sameVersion(wr.Snapshot(), f.rd.Snapshot()) {
			f.s.unlockWrite()
			return sqlite3.BUSY_SNAPSHOT
		}
		f.wr, f.dirty, f.committed, f.deferred = wr, false, false, nil
		f.written = map[volume.PageIdx]struct{}{}
	}
	f.lock = level
	return nil
}

// Unlock ends a write transaction (discarding what was not committed) and,
// at NONE, unpins the snapshot.
func (f *file) Unlock(level vfs.LockLevel) error {
	if f.lock <= level {
		return nil
	}
	if f.lock >= vfs.LOCK_RESERVED && level < vfs.LOCK_RESERVED {
		if f.dirty && !f.committed {
			// SQLite unlocks without COMMIT_PHASETWO only on rollback.
			f.s.log.Debug("graft: write transaction rolled back", "vid", f.s.b.VID())
		}
		f.wr, f.dirty, f.deferred = nil, false, nil
		f.s.unlockWrite()
	}
	f.lock = level
	failed := f.failed
	if level == vfs.LOCK_NONE {
		f.rd = nil
		f.committed, f.failed = false, nil
	}
	if failed != nil {
		return vfs.SystemError(failed, sqlite3.IOERR_UNLOCK)
	}
	return nil
}

// CheckReservedLock reports whether any connection of the process holds the
// volume's write lock.
func (f *file) CheckReservedLock() (bool, error) {
	if f.lock >= vfs.LOCK_RESERVED {
		return true, nil
	}
	return f.s.writeLocked(), nil
}

// LockState implements vfs.FileLockState.
func (f *file) LockState() vfs.LockLevel { return f.lock }

// SectorSize is the page size: writes never tear within a page.
func (f *file) SectorSize() int { return pageSize }

// DeviceCharacteristics announces batch atomic writes, so SQLite commits a
// transaction as BEGIN_ATOMIC_WRITE, the pages, COMMIT_ATOMIC_WRITE.
func (f *file) DeviceCharacteristics() vfs.DeviceCharacteristic {
	return vfs.IOCAP_ATOMIC4K |
		vfs.IOCAP_BATCH_ATOMIC |
		vfs.IOCAP_SAFE_APPEND |
		vfs.IOCAP_SEQUENTIAL |
		vfs.IOCAP_POWERSAFE_OVERWRITE |
		vfs.IOCAP_SUBPAGE_READ
}

// BeginAtomicWrite starts SQLite's commit: the pages that follow and the ones
// already staged become one commit at CommitAtomicWrite.
func (f *file) BeginAtomicWrite() error {
	if f.wr == nil {
		return sqlite3.IOERR_BEGIN_ATOMIC // not in a write transaction: SQLite falls back
	}
	return nil
}

// CommitAtomicWrite commits the transaction. A lost commit answers
// SQLITE_BUSY_SNAPSHOT here, where SQLite rolls the transaction back
// cleanly; any other failure is let through and answered as an I/O error
// by CommitPhaseTwo (an I/O error here would make SQLite retry the commit
// as a journaled write).
func (f *file) CommitAtomicWrite() error {
	return f.commit()
}

// RollbackAtomicWrite drops the staged pages.
func (f *file) RollbackAtomicWrite() error {
	if f.wr != nil {
		f.wr = f.s.b.Writer() // SQLite rolls back next; keep a writer on the same base
		f.dirty = false
	}
	return nil
}

// CommitPhaseTwo commits what the batch did not (SQLite without batch
// atomic writes, e.g. synchronous=OFF) and answers the failures
// CommitAtomicWrite deferred.
func (f *file) CommitPhaseTwo() error {
	if f.deferred == nil && f.wr != nil && f.dirty && !f.committed {
		if err := f.commit(); err != nil {
			return err
		}
	}
	if err := f.deferred; err != nil {
		f.deferred, f.failed = nil, err
		return vfs.SystemError(err, sqlite3.IOERR)
	}
	return nil
}

// commit makes wr one local commit and, with graft_sync=remote, pushes it.
func (f *file) commit() error {
	if f.wr == nil || !f.dirty {
		return nil
	}
	ctx, cancel := f.ctx()
	defer cancel()
	if err := f.fixPageCount(ctx); err != nil {
		f.deferred = err
		return nil
	}
	if err := f.stampNonce(ctx); err != nil {
		f.deferred = err
		return nil
	}
	if f.mode == syncRemote && f.maxPages > 0 && len(f.written) > f.maxPages {
		f.deferred = fmt.Errorf("%w: the transaction changes %d pages of %s, a commit carries at most %d (graft_max_pages, the cluster's MaxPagesPerCommit); split it into smaller transactions",
			ErrTooLarge, len(f.written), f.s.b.VID(), f.maxPages)
		return nil
	}
	if f.mode == syncRemote {
		f.s.beginPush()
		defer f.s.endPush()
	}
	snap, err := f.wr.Commit(ctx)
	if err != nil {
		if errors.Is(err, errConcurrentWrite) {
			return sqlite3.BUSY_SNAPSHOT
		}
		f.deferred = fmt.Errorf("graft: commit to %s: %w", f.s.b.VID(), err)
		return nil
	}
	f.committed, f.dirty = true, false
	f.own, f.ownCounter = snap, f.seenCounter
	f.wr = nil
	f.rd = f.s.b.Reader() // SQLite keeps SHARED after COMMIT: read the new snapshot
	if f.mode == syncLocal {
		f.s.kickPush()
		return nil
	}
	err = f.s.b.Push(ctx)
	switch {
	case err == nil:
	case errors.Is(err, errRemoteRejected):
		if rerr := f.s.b.Reset(ctx); rerr != nil {
			f.s.log.Warn("graft: reset after a rejected commit failed", "vid", f.s.b.VID(), "err", rerr)
		}
		f.rd = f.s.b.Reader()
		f.committed = false
		f.s.log.Debug("graft: commit rejected", "vid", f.s.b.VID(), "base", snap)
		return sqlite3.BUSY_SNAPSHOT
	default:
		f.deferred = f.abandon(snap, err)
		f.rd = f.s.b.Reader()
	}
	return nil
}

// abandon says what became of a remote commit whose push failed other than
// by a rejection: the client recorded the push and resends the identical
// commit, so its outcome is unknown, not failed; it is kept, never split.
func (f *file) abandon(snap snapshot, pushErr error) error {
	return fmt.Errorf("%w (%s): %w; the transaction is local commit %d, kept whole with an unknown outcome: the next commit, PRAGMA graft_push or graft_pull resends it, PRAGMA graft_reset resolves it against the cluster",
		ErrPush, f.s.b.VID(), pushErr, snap.LocalLSN)
}

// fixPageCount sets the commit's page count to the header's database size.
// SQLite shrinks the file only after its commit point; the header already
// has the final size.
func (f *file) fixPageCount(ctx context.Context) error {
	if f.wr.PageCount() == 0 {
		return nil
	}
	p1, err := f.wr.ReadPage(ctx, 1)
	if err != nil {
		return fmt.Errorf("graft: read page 1 of %s: %w", f.s.b.VID(), err)
	}
	if n := binary.BigEndian.Uint32(p1[hdrDBSize:]); n > 0 && n != f.wr.PageCount() {
		f.wr.SetPageCount(n)
	}
	return nil
}
