// Package checker decides whether a consistency-test history (see package
// history) and the cluster's final state keep graft's promises. Each
// checker returns a Result: a Verdict (true, false or unknown), a bounded
// list of human-readable anomalies naming op indexes, volumes and LSNs,
// and statistics.
//
// The checkers and what they verify:
//
//   - Linearizable: per volume, commits and linearizable head reads form a
//     linearizable register of (lsn, hash), checked with Porcupine. An
//     operation whose outcome is unknown (info) may take effect at any time
//     after its invocation, or never.
//   - Chain: the final chains read from every node are gap-free with one
//     hash per LSN, identical across replicas, contain every acknowledged
//     commit at its LSN, no failed commit, and nothing nobody sent.
//   - Pages: every acknowledged commit's page bytes, through a caller's
//     PageCheck.
//   - Bank: every balance read conserves the total.
//   - ReadYourWrites: an at_least_lsn read after an acknowledged commit
//     sees that commit or a later one.
//   - Bucket: the object store holds a gap-free prefix of each chain
//     (FinalBucket: the whole chain after a final flush).
//
// A final read that returned no data is one of two things. If its error
// wraps ErrUnreadable (a timeout, unavailable, the store unreachable: the
// runner classifies), nothing was learned and the verdict is at best
// unknown. Any other error is an answer about the data: a node that says
// a range is flushed while the bucket lacks it (data_loss, not_found), an
// object listed and then missing, a gap before the flushed LSNs, a
// corrupt object. That is a violation (Chain's unread, FinalBucket's
// errors, Pages' errors), never unknown.
//
// Invariants: checkers are pure functions of their inputs (no I/O, except
// through a PageCheck the caller passes), every checker can fail, and an
// operation is treated as certainly not applied only when its completion is
// Fail; an Info completion, or none, is an unknown outcome.
package checker
