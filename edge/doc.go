// Package edge is graft's read-through cache: a stateless process that
// serves the whole graft.v1.VolumeService on the cluster's Connect paths,
// forwards commits upstream untouched and answers reads from a
// byte-bounded cache of immutable things, so reads scale out near clients
// while the Raft nodes serve only what the edge has not seen.
//
// Invariants:
//
//   - The cache holds only immutable facts, each keyed by its full
//     identity: "page i of volume v has version V at snapshot L" under
//     (v, L, i); "snapshot L of v has page count N" under (v, L, 0); the
//     bytes of a page version under (v, i, V). None of them can change
//     once true, so an entry is never invalidated, only evicted; there is
//     no TTL anywhere on the read path.
//   - Every entry comes from an answer about that exact snapshot: an
//     upstream ReadPages at lsn L (which names the version it served of
//     each page), or the object store's records at L <= its flushed
//     watermark (CRC-verified). Two snapshots share a page's bytes only
//     through its version LSN. So the edge never serves a page version
//     that does not belong to the requested snapshot, however commits
//     race and flushes trim the cluster's buffer.
//   - A head-relative read (lsn 0) first learns the head from the
//     cluster at the requested consistency (a linearizable GetSnapshot for
//     linearizable reads), then reads that fixed snapshot. A linearizable
//     read through the edge is therefore linearizable; with the cluster
//     unreachable it answers unavailable, never a cached head.
//   - Answers from upstream that are malformed (wrong snapshot, wrong
//     page, short data) and failed or corrupt object-store reads are never
//     cached nor served; a bucket failure falls back to the cluster.
//   - Bad input is rejected locally with the cluster's code and message
//     (the validation lives in package volume, shared with the cluster).
//   - Errors from upstream reach the client with their code, message,
//     details (CommitConflict) and Retry-After unchanged.
//   - Each volume has at most one upstream WatchVolume stream, fanned out
//     to every subscriber of that volume on this edge.
package edge
