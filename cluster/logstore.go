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
	"github.com/hashicorp/raft-wal/metadb"
)

// Raft log stores (RaftTuning.LogStore).
const (
	// LogStoreBolt is raft-boltdb/v2: one bbolt file; every append costs
	// two fdatasyncs (data, then meta page).
	LogStoreBolt = "bolt"
	// LogStoreWAL is hashicorp/raft-wal: append-only segment files; every
	// append costs one fdatasync.
	LogStoreWAL = "wal"
)

// raftStore is a Raft log and stable store that must be closed.
type raftStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// openLogStore opens the configured log store under dir. The stores keep
// their files apart (raft.db vs wal/), so a data directory written by one
// is not silently read by the other: switching stores means a new node
// (remove, wipe, add), as with any change of on-disk format.
func openLogStore(dir string, t RaftTuning) (raftStore, error) {
	switch t.LogStore {
	case LogStoreBolt, "":
		return raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), NoSync: t.NoSync})
	case LogStoreWAL:
		if t.NoSync {
			return nil, fmt.Errorf("log store %q always fsyncs; --unsafe-no-fsync works only with %q", LogStoreWAL, LogStoreBolt)
		}
		wdir := filepath.Join(dir, "wal")
		if err := os.MkdirAll(wdir, 0o755); err != nil {
			return nil, err
		}
		// raft-wal v0.4.0's Close leaves its bbolt meta DB open, so the
		// file lock outlives the store and reopening the same directory in
		// the same process (a node restarted in-process) blocks forever in
		// flock. We own the meta DB and close it after the WAL.
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(wdir, wal.WithMetaStore(meta))
		if err != nil {
			_ = meta.Close()
			return nil, err
		}
		return &walStore{WAL: w, meta: meta}, nil
	default:
		return nil, fmt.Errorf("unknown raft log store %q (want %q or %q)", t.LogStore, LogStoreBolt, LogStoreWAL)
	}
}

// walStore closes the WAL and then its meta DB (see openLogStore).
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (s *walStore) Close() error {
	return errors.Join(s.WAL.Close(), s.meta.Close())
}
