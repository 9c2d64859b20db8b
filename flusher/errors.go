package flusher

import "errors"

// Errors of the flusher and the reader.
var (
	// ErrNotFlushed means the asked-for LSN is not in the volume's flushed
	// history (not flushed yet, or older than the history kept).
	ErrNotFlushed = errors.New("flusher: lsn not flushed")
	// ErrLayout means the object store holds something the layout does not
	// allow: a record that disagrees with its key or with the history, a
	// segment that disagrees with its record. It is never retried away.
	ErrLayout = errors.New("flusher: object store layout violated")
	// ErrConflict means a log record already in the object store holds
	// other commits than the round being flushed: two writers share the
	// prefix, or the bucket was changed behind the cluster's back. The round
	// cannot complete and the buffer is not trimmed.
	ErrConflict = errors.New("flusher: conflicting log record")
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
