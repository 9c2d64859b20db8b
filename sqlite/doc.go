// Package sqlite is the SQLite VFS "graft": a SQLite database whose pages
// live in a graft volume, replicated lazily (a replica fetches only the pages
// its queries touch) and committed optimistically (one SQL transaction is one
// volume commit). It runs on github.com/ncruces/go-sqlite3 (pure Go, no cgo)
// and works through database/sql with its driver.
//
// Importing the package registers the VFS. A DSN names the volume and the
// replica:
//
//	file:VID?vfs=graft&graft_dir=DIR&graft_endpoints=URL,URL&graft_sync=remote
//
// or uses a client.Runtime registered in code with RegisterRuntime:
//
//	file:VID?vfs=graft&graft_runtime=NAME
//
// Other parameters: graft_timeout (default 30s: one page fetch, commit or
// push) and graft_max_pages (default 256, the cluster's MaxPagesPerCommit:
// a graft_sync=remote transaction changing more pages fails with
// ErrTooLarge before anything is committed; 0: no check).
//
// Mapping and invariants:
//   - The main database file is the volume: SQLite page i is volume page i
//     (byte offset (i-1)*4096). page_size must be 4096; other sizes are
//     refused. Journals live in memory (SQLite sees an in-memory journal);
//     journal_mode=WAL is refused: WAL needs a shared-memory index and a
//     second file, neither of which a volume replicates.
//   - SHARED pins a local snapshot: a read transaction sees one snapshot
//     however the volume moves on. RESERVED takes the volume's write lock,
//     shared by every connection of the process, and answers
//     SQLITE_BUSY_SNAPSHOT if the pinned snapshot is no longer the latest.
//   - A transaction's pages become one local commit when SQLite commits
//     (SQLite's batch-atomic-write commit; COMMIT_PHASETWO otherwise). A
//     commit that loses (stale base locally, or rejected by the cluster)
//     answers SQLITE_BUSY_SNAPSHOT with ErrBusySnapshot or ErrRejected
//     behind it, never SQLITE_IOERR (SQLite would retry it as a journaled
//     write).
//   - Reads of the header rewrite the file change counter (offset 24) and
//     the version-valid-for number (offset 92) from the snapshot, so every
//     connection notices every change and trusts the in-header size.
//   - graft_sync=remote (default): COMMIT returns after the cluster
//     acknowledged the push; while a commit is being pushed, new read
//     transactions of the process wait, so nobody reads a commit the cluster
//     may still refuse. graft_sync=local: commit locally, push in the
//     background (a goroutine per open volume, retrying with backoff while
//     the cluster is unreachable; a rejected push waits for graft_reset or
//     graft_fork).
package sqlite

import (
	"errors"

	"github.com/ncruces/go-sqlite3"
)

// Errors behind the SQLite error codes the VFS answers. errors.Is works on
// the *sqlite3.Error that database/sql returns.
var (
	// ErrBusySnapshot means the transaction's snapshot is no longer the
	// latest local snapshot (another transaction committed, or a pull or
	// reset moved the volume). SQLite answers SQLITE_BUSY_SNAPSHOT; retry
	// the transaction.
	ErrBusySnapshot = errors.New("graft: the transaction's snapshot is stale (another commit came first); retry the transaction")
	// ErrRejected means the cluster refused the transaction's commit (its
	// base was not the volume's head). The replica was reset to the remote
	// head; SQLite answers SQLITE_BUSY_SNAPSHOT; retry the transaction.
	ErrRejected = errors.New("graft: the cluster rejected the commit (another replica committed first); the replica was reset, retry the transaction")
	// ErrPush means a graft_sync=remote commit could not be pushed for a
	// reason other than a rejection.
	ErrPush = errors.New("graft: push to the cluster failed")
	// ErrTooLarge means a graft_sync=remote transaction changes more pages
	// than one cluster commit carries (graft_max_pages); nothing was
	// committed.
	ErrTooLarge = errors.New("graft: transaction too large for one commit")
	// ErrPageSize means a page size other than 4096 was asked for or found.
	ErrPageSize = errors.New("graft: page_size must be 4096 (a SQLite page is a volume page)")
	// ErrWAL means journal_mode=WAL (or another unsupported journal mode)
	// was asked for.
	ErrWAL = errors.New("graft: journal_mode=WAL is not supported: the WAL and its shared-memory index are files a volume does not replicate; the graft VFS keeps the rollback journal in memory and commits each transaction to the volume atomically")
	// ErrJournalOff means journal_mode=OFF was asked for.
	ErrJournalOff = errors.New("graft: journal_mode=OFF is not supported: a failed statement could not roll back")
	// ErrNotDatabase means the volume holds something that is not a SQLite
	// database.
	ErrNotDatabase = errors.New("graft: the volume does not hold a SQLite database")
	// ErrBadDSN means the database name or a graft_* parameter is invalid.
	ErrBadDSN = errors.New("graft: bad DSN")
	// ErrUnknownPragma means a graft_* pragma the VFS does not know.
	ErrUnknownPragma = errors.New("graft: unknown pragma")
	// ErrInWriteTxn means a pragma that moves the volume was run inside this
	// connection's write transaction.
	ErrInWriteTxn = errors.New("graft: not allowed inside a write transaction")

	// errConcurrentWrite is what a backend's Writer.Commit answers when its
	// base is no longer the latest local snapshot.
	errConcurrentWrite = errors.New("graft: concurrent local write")
	// errRemoteRejected is what a backend's Push answers when the cluster
	// refused the pending commits.
	errRemoteRejected = errors.New("graft: push rejected")
)

// IsBusySnapshot reports whether err is SQLITE_BUSY_SNAPSHOT: the
// transaction lost to another commit (in this process or, with
// graft_sync=remote, on another replica) and should be retried.
func IsBusySnapshot(err error) bool {
	return errors.Is(err, sqlite3.BUSY_SNAPSHOT)
}
