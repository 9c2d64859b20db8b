// Package objstore owns the object-store interface the flusher, the cluster
// and the edge use to read and write flushed data, and its three backends:
//
//   - s3://bucket/prefix: Amazon S3 or any S3-compatible server, through
//     aws-sdk-go-v2;
//   - file:///abs/dir: a local directory, one file per key;
//   - mem://: process memory, for tests.
//
// Open picks the backend from a URL; see Open for the URL parameters.
//
// # Keys
//
// A Store is a flat key space under a prefix (the URL's path). Keys are
// relative and '/'-separated: "volumes/{vid}/segments/{sid}". A valid key is
// non-empty valid UTF-8 of at most MaxKeyLen bytes, does not start or end
// with '/', has no empty, "." or ".." segment, no segment longer than
// MaxSegmentLen bytes, and no NUL or other control character. Every backend
// rejects other keys with ErrInvalidKey, so a key that works on one backend
// works on the others, with one exception: the file backend cannot hold a
// key and a key below it ("a" and "a/b"), and reserves segments starting
// with ".objstore-tmp-" for its temporary files.
//
// # Invariants
//
// Every backend provides the same guarantees, checked by the shared
// conformance suite in objstore/storetest:
//
//   - Writes are atomic: a reader sees either no object or a complete one,
//     never a torn or partially written one. A successful Put or PutIfAbsent
//     is durable (fsync of file and directory in the file backend unless
//     Config.NoSync, a 200 from S3).
//   - PutIfAbsent is an atomic create: of concurrent PutIfAbsent calls on one
//     key exactly one succeeds and the others get ErrExists.
//   - List returns every key with a prefix, sorted bytewise, paginating
//     internally; Delete of a missing key succeeds.
//   - Byte slices passed in or returned are owned by the caller: a store never
//     keeps or shares them.
//   - Every error from a Store method wraps one of this package's sentinel
//     errors or the underlying I/O, network or context error (test it with
//     errors.Is; a canceled ctx yields an error wrapping ctx.Err()).
//
// # Retries, deadlines and hedging
//
// The S3 backend retries transient failures (5xx, throttling, connection
// errors, attempt timeouts) with the SDK's standard retryer, up to
// Config.MaxAttempts, with exponential backoff. Every attempt has its own
// deadlines, so a stalled path (a blackholed connection never resets) costs
// an attempt, not the hours TCP takes to give up: no response byte within
// Config.FirstByteTimeout, or the whole attempt not done within
// Config.AttemptTimeout, both plus the time the attempt's bytes take at
// Config.MinThroughput. A call whose last attempt timed out returns an
// error wrapping ErrTimeout. Small GETs are hedged: with no response byte
// after a recent-latency quantile (Config.HedgeAfter..HedgeMax), a second
// request goes out and the first to answer wins. The caller's ctx bounds
// the whole call as usual. With Config.Registerer set, the backend counts
// graft_objstore_timeouts_total{op,kind}, graft_objstore_retries_total{op},
// graft_objstore_hedges_total{op} and graft_objstore_hedge_wins_total{op}.
//
// A retried PutIfAbsent whose first attempt reached S3 but whose response
// was lost (or timed out) returns ErrExists although this very call created
// the object: callers that use PutIfAbsent for idempotent writes compare
// the stored content with their own on ErrExists (DESIGN.md §4: a conflict
// whose stored hash equals ours is success).
package objstore
