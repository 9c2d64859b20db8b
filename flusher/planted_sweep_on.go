//go:build graft_bug_sweep_ignores_records

package flusher

// plantedSweepIgnoresRecords is a deliberately planted bug, built only with
// the tag graft_bug_sweep_ignores_records: GC's sweep of superseded
// checkpoint generations deletes the segments they alone name without
// checking that no log record names them. Compaction relocates versions of
// record segments at or below the horizon; with a base below the horizon
// (retention by LSN count), snapshots between the base checkpoint and the
// next one read those versions through their records, whose segments are
// then gone. THIS BUILD IS BROKEN ON PURPOSE, to prove the tests and the
// consistency suite detect it. Never set in a real build.
const plantedSweepIgnoresRecords = true
