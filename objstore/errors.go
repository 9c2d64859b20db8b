package objstore

import "errors"

// Sentinel errors. A Store method's error wraps one of these, or the
// underlying I/O, network or context error, so callers test with errors.Is.
var (
	// ErrNotFound reports a Get, GetRange or existence check on a key that
	// holds no object.
	ErrNotFound = errors.New("objstore: not found")

	// ErrExists reports a PutIfAbsent on a key that already holds an object
	// (S3: 412 PreconditionFailed, or 409 ConditionalRequestConflict when a
	// concurrent conditional write to the key is in flight).
	ErrExists = errors.New("objstore: already exists")

	// ErrRange reports a GetRange whose offset or length is negative or
	// whose range ends beyond the object (S3: 416 InvalidRange).
	ErrRange = errors.New("objstore: range not satisfiable")

	// ErrInvalidKey reports a key or list prefix that breaks the key rules
	// in the package documentation.
	ErrInvalidKey = errors.New("objstore: invalid key")

	// ErrInvalidURL reports a store URL Open cannot use: an unknown scheme,
	// a missing bucket, a relative file path, an unknown or malformed query
	// parameter.
	ErrInvalidURL = errors.New("objstore: invalid url")

	// ErrTimeout reports an S3 call whose last attempt ran past its
	// per-attempt deadline (Config.FirstByteTimeout, AttemptTimeout): the
	// network path or the server is stalled. It is transient, like any
	// network error, and distinct from the caller's own context deadline.
	ErrTimeout = errors.New("objstore: timed out")

	// ErrClosed reports a call on a Store after Close.
	ErrClosed = errors.New("objstore: closed")
)
