package flusher

import (
	"errors"
	"fmt"

	"github.com/graft-cluster/graft/volume"
)

// Errors of the flusher and the reader.
var (
	// ErrNotFlushed means the asked-for LSN is not in the volume's flushed
	// history (not flushed yet, or older than the history kept).
	ErrNotFlushed = errors.New("flusher: lsn not flushed")
	// ErrLayout means the object store holds something the layout does not
	// allow: a record that disagrees with its key or with the history, a
	// segment that disagrees with its record. It is never retried away.
	ErrLayout = errors.New("flusher: object store layout violated")
	// ErrConflict means the object store holds a log record of a volume
	// that the cluster cannot reconcile with its state: other commits than
	// the round being flushed (two writers share the prefix, or the bucket
	// was changed behind the cluster's back), a record that does not
	// decode, or records the state does not know (the bucket is ahead of
	// it). The volume is quarantined (see fsm.Quarantine); other volumes go
	// on. Errors carrying it are *ConflictError.
	ErrConflict = errors.New("flusher: conflicting log record")
	// ErrForeignBucket means the object store's identity object names
	// another cluster: this cluster does not flush, recover or collect
	// garbage there unless told to adopt the bucket (Config.AdoptBucket in
	// package cluster, graft node --adopt-bucket).
	ErrForeignBucket = errors.New("flusher: object store belongs to another cluster")
	// ErrNotQuarantined means an unquarantine named a volume that is not
	// quarantined.
	ErrNotQuarantined = errors.New("flusher: volume not quarantined")
	// ErrNoStore means the node has no object store configured.
	ErrNoStore = errors.New("flusher: no object store configured")
)

// StoreError is an object-store failure met while reading flushed history
// (network, 5xx, throttling, a missing object). Callers treat it as
// transient unless it wraps objstore.ErrNotFound.
type StoreError struct {
	Op  string // what was being read, e.g. "get log record vid@lsn"
	Err error
}

func (e *StoreError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the object store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// ConflictError is an ErrConflict about one volume: the object that
// conflicts and why.
type ConflictError struct {
	VID    volume.ID
	Key    string // the object-store key of the offending object
	Reason string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: volume %s: %s: %s", ErrConflict, e.VID, e.Key, e.Reason)
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Unwrap() error { return ErrConflict }
