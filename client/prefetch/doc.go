// Package prefetch holds the prefetch oracles of the client replica: a
// Leap-style predictor (NewLeap, the default) and None. An oracle watches
// the page reads of one volume and, on a miss, names the pages the reader is
// likely to want next, so the replica can fetch them in the same ReadPages
// call as the page being read.
//
// The oracles satisfy client.Oracle structurally; this package imports only
// volume and the standard library (client imports it for its default).
//
// # Invariants
//
//   - Predict(idx, max) never returns 0, idx itself, an index above
//     volume.MaxPageIdx, a duplicate, or more than max indexes (none when
//     max <= 0).
//   - An oracle is deterministic: the same sequence of Observe and Predict
//     calls gives the same predictions. It has no clock, randomness or I/O.
//   - A Leap is safe for concurrent use; its state is a fixed-size history
//     and the last prediction, so memory is bounded by its LeapConfig.
package prefetch
