//go:build !graft_bug_sweep_ignores_records

package flusher

// plantedSweepIgnoresRecords is true only in binaries built with the build
// tag graft_bug_sweep_ignores_records (see planted_sweep_on.go).
const plantedSweepIgnoresRecords = false
