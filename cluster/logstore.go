package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// Raft log stores (RaftTuning.LogStore).
const (
	// LogStoreWAL, the default, is hashicorp/raft-wal: append-only segment
	// files and a bbolt meta DB; every append costs one fdatasync. It needs
	// v0.4.1 or later: v0.4.0 could not reopen a log whose tail was
	// truncated (TestOpenLogStore_WALTailTruncation) and leaked its meta
	// DB's file lock on Close (TestOpenLogStore_WALReopen).
	LogStoreWAL = "wal"
	// LogStoreBolt is raft-boltdb/v2: one bbolt file; every append costs
	// two fdatasyncs (data, then meta page). The default before wal; the
	// only store that supports RaftTuning.NoSync.
	LogStoreBolt = "bolt"
	// DefaultLogStore is the store of a new data directory when none is
	// configured (an existing directory keeps the store it holds).
	DefaultLogStore = LogStoreWAL
)

// ErrLogStoreMismatch: the data directory was written by the other log
// store.
var ErrLogStoreMismatch = errors.New("raft log store mismatch")

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// RaftStore is a Raft log and stable store that must be closed.
type RaftStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// OpenLogStore opens the configured log store under dir (t.LogStore, empty
// for the store the directory already holds, else wal; and t.NoSync; the rest of t is ignored). Benchmarks open
// bare Raft on exactly the store a node uses through it. The stores keep
// their files apart (raft.db vs wal/), so a data directory written by one
// is not silently read by the other: switching stores means a new node
// (remove, wipe, add), as with any change of on-disk format.
func OpenLogStore(dir string, t RaftTuning) (RaftStore, error) {
	// A data directory written by the other store must not be mistaken
	// for an empty one: the node would start with no log and no vote.
	bolt, wdir := filepath.Join(dir, "raft.db"), filepath.Join(dir, "wal")
	if t.LogStore == "" {
		// Not chosen: keep what the directory holds (a node created when
		// bolt was the default restarts on bolt), else the default.
		t.LogStore = DefaultLogStore
		if exists(bolt) && !exists(wdir) {
			t.LogStore = LogStoreBolt
		}
	}
	switch {
	case t.LogStore == LogStoreWAL && exists(bolt) && !exists(wdir):
		return nil, fmt.Errorf("%s holds a %q Raft log (raft.db) but the node is configured for %q: start it with --raft-log-store %s, or remove it from the cluster, wipe the directory and add it back: %w",
			dir, LogStoreBolt, LogStoreWAL, LogStoreBolt, ErrLogStoreMismatch)
	case t.LogStore == LogStoreBolt && exists(wdir) && !exists(bolt):
		return nil, fmt.Errorf("%s holds a %q Raft log (wal/) but the node is configured for %q: start it with --raft-log-store %s, or remove it from the cluster, wipe the directory and add it back: %w",
			dir, LogStoreWAL, LogStoreBolt, LogStoreWAL, ErrLogStoreMismatch)
	}
	switch t.LogStore {
	case LogStoreBolt:
		return raftboltdb.New(raftboltdb.Options{Path: bolt, NoSync: t.NoSync})
	case LogStoreWAL:
		if t.NoSync {
			return nil, fmt.Errorf("log store %q always fsyncs; --unsafe-no-fsync works only with %q", LogStoreWAL, LogStoreBolt)
		}
		if err := os.MkdirAll(wdir, 0o755); err != nil {
			return nil, err
		}
		w, err := wal.Open(wdir)
		if err != nil {
			return nil, err
		}
		return w, nil
	default:
		return nil, fmt.Errorf("unknown raft log store %q (want %q or %q)", t.LogStore, LogStoreBolt, LogStoreWAL)
	}
}
