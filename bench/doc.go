// Package bench measures; it never asserts on speed.
//
// It owns three things:
//   - Recorder, a concurrency-safe latency recorder that keeps every sample
//     (8 bytes each; a few million are fine) so its percentiles are exact,
//     not estimated. Percentiles use the nearest-rank definition (see
//     Percentile).
//   - MeasureFsync, the disk's floor for a durable log append: the latency
//     of appending a record and fdatasync-ing it, which no replicated commit
//     on that disk can beat.
//   - RunCommit, closed-loop commit load against a running cluster.
//
// Summaries carry time.Duration fields; Summary.JSON gives the
// milliseconds-as-float64 form that `graft bench --json` and the plotting
// scripts consume.
package bench
