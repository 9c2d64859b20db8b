package sqlite

import (
	"context"
	"fmt"

	"github.com/graft-cluster/graft/volume"
)

// snapshot is a local snapshot of a volume as the VFS sees it.
type snapshot struct {
	VID       volume.ID
	LocalLSN  volume.LSN
	RemoteLSN volume.LSN
	PageCount uint32
}

func (s snapshot) String() string {
	return fmt.Sprintf("vid=%s local=%d remote=%d pages=%d", s.VID, s.LocalLSN, s.RemoteLSN, s.PageCount)
}

// sameVersion reports whether two snapshots are the same local version: a
// writer based on a is current if the latest is b. RemoteLSN is left out: a
// push moves it without changing the content.
func sameVersion(a, b snapshot) bool { return a.VID == b.VID && a.LocalLSN == b.LocalLSN }

// pageReader reads one pinned snapshot of a volume.
type pageReader interface {
	Snapshot() snapshot
	// ReadPage returns the page's 4096 bytes (zeros if never written).
	ReadPage(ctx context.Context, idx volume.PageIdx) ([]byte, error)
}

// pageWriter stages one local commit on top of its base snapshot.
type pageWriter interface {
	pageReader // Snapshot is the base; ReadPage reads its own writes
	WritePage(idx volume.PageIdx, page []byte) error
	SetPageCount(n uint32)
	PageCount() uint32
	// Commit makes the staged pages one atomic local commit. It fails with an
	// error matching errConcurrentWrite if the base is no longer the latest
	// local snapshot.
	Commit(ctx context.Context) (snapshot, error)
}

// pageStats is what graft_pages reports.
type pageStats struct {
	Present, Pending, Fetched uint64
}

// backend is what the VFS needs from a replica volume. The client replica
// (*client.Volume) satisfies it through clientBackend; tests use a fake.
type backend interface {
	VID() volume.ID
	Snapshot() snapshot
	Reader() pageReader
	Writer() pageWriter
	// Push sends pending local commits; an error matching errRejected means
	// the cluster refused them (stale base).
	Push(ctx context.Context) error
	Pull(ctx context.Context) error
	Reset(ctx context.Context) error
	Status() string
	// Fork copies the replica into a new volume and switches to it.
	Fork(ctx context.Context) (volume.ID, error)
	Pages() pageStats
}
