// Package fsm is the deterministic state machine that the Raft log drives.
//
// It owns, per volume, the head snapshot, the buffer of commits that are not
// yet flushed to object storage (pages, grafts, hashes), and a page-version
// index that answers "which version of page P is visible at LSN L" with a
// binary search. It also owns the replicated node directory (each member's
// client API address), so any node can forward to the leader.
//
// Invariants:
//   - Apply is the only place that decides whether a commit is accepted.
//     A commit is accepted iff the volume's head LSN equals its base LSN;
//     it then gets LSN base+1. A retry whose hash equals the hash of the
//     commit already at base+1 gets that commit's original result. Anything
//     else is a rejection carrying the current head, and changes nothing.
//   - Apply does no I/O and reads no clock or randomness: time, limits and
//     the commit hash arrive in the command, so every replica computes the
//     same state from the same log.
//   - LSNs of a volume are gap-free: buffered commits are a contiguous
//     range [first, head].
//   - Buffered page bytes are immutable once applied: readers may hold
//     slices returned by queries without copying.
//   - The applied Raft index is part of the state: it is written into every
//     snapshot and set by Restore, so state and index never disagree.
//     Restore decodes and verifies the whole snapshot before it replaces
//     anything; a failed restore leaves the old state untouched.
package fsm
