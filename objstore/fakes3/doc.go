// Package fakes3 runs a small S3-compatible server for development: gofakes3
// on a real TCP listener, keeping its objects in a bbolt file in a
// directory, so they survive restarts. `graft dev` embeds it so that the
// nodes flush through the real S3 client path (objstore's s3:// backend)
// without a cloud account. Tests use objstore/s3test instead, which keeps
// objects in memory.
//
// Serve opens (or creates) DIR/fakes3.db, creates the bucket if missing and
// serves until Close. URL returns the objstore.Open URL of a prefix in the
// bucket, with path-style addressing, region us-east-1 and the static
// credentials AccessKey and SecretKey; the server checks no signature, so
// any credentials work.
//
// # Invariants
//
//   - A PUT with If-None-Match: * is checked and applied in one bbolt write
//     transaction: of concurrent creates of one key exactly one succeeds and
//     the others get 412 PreconditionFailed. objstore's PutIfAbsent is
//     therefore atomic against this server.
//   - Writes are atomic and durable: a reader sees a whole object or none,
//     and bbolt has fsynced the transaction before a PUT or DELETE answers.
//   - Ranged GETs (Range: bytes=a-b) are served, with 206 and Content-Range.
//   - A GET serves bytes it owns: gofakes3's bolt backend returns objects
//     that alias bbolt's memory map after its transaction ended, which a
//     slow response read after bbolt remapped (the server died). The
//     server copies every object out under a lock that writes take
//     exclusively (backend.go).
//   - One Server at a time owns a directory: bbolt's file lock makes a second
//     Serve on it fail with ErrDirLocked.
//
// Fault injection, for the consistency suite (`graft s3 --fault-admin`):
// SetFaults makes the server answer a share of its requests, or of those
// whose path contains a string, with 500 InternalError or 503 SlowDown
// instead of serving them; SetFaultAdmin exposes the same over HTTP at
// FaultPath. Off by default; SetLatency delays every request.
//
// It is a development server, not a store to run in production: each object
// is kept whole in the database and read whole into memory to serve any
// range of it, writes are serialized by bbolt's single writer, and the
// database file never shrinks.
package fakes3
