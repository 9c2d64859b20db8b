// Package bench measures: latency recorders with exact percentiles, the
// disk's append+fdatasync floor, and closed-loop commit load against a
// cluster. Benchmarks report numbers; nothing here asserts on speed.
package bench
