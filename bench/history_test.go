package bench_test

import (
	"context"
	"testing"

	"github.com/graft-cluster/graft/bench"
)

// With checkpoints, a cold head read costs a bounded number of requests
// and the Raft state holds only the records since the newest checkpoint;
// without them both grow with the history. Every read is checked against
// the pages written.
func TestRunHistory_CheckpointsBoundReads(t *testing.T) {
	res, err := bench.RunHistory(context.Background(), bench.HistoryConfig{Commits: 1200, Rounds: 400, Pages: 50, CheckpointRecords: 16, Latency: -1})
	if err != nil {
		t.Fatal(err)
	}
	before, after := res[0], res[1]
	t.Logf("before: %+v", before)
	t.Logf("after: %+v", after)
	if before.StateFroms != 400 || after.StateFroms >= 16 {
		t.Fatalf("state history: %d records without checkpoints, %d with (want 400 and < 16)", before.StateFroms, after.StateFroms)
	}
	// Head: LIST checkpoints, LIST log, GET last record, the records after
	// the checkpoint (< 16), then at most a checkpoint or segment index and
	// the page.
	if got := after.Head.Requests.Total(); got > 3+16+2 {
		t.Fatalf("head read with checkpoints took %d requests", got)
	}
	if got := before.Head.Requests.Total(); got < 400 {
		t.Fatalf("head read without checkpoints took only %d requests", got)
	}
	if got := after.Restart.Requests.Total(); got > 16+2 {
		t.Fatalf("restarted node's head read took %d requests", got)
	}
	// With deltas: LIST deltas, GET delta, GET base checkpoint, GET page;
	// a restarted node GETs the delta at its watermark by key (no LIST).
	deltas := res[2]
	t.Logf("deltas: %+v", deltas)
	if deltas.Mode != "deltas" || deltas.Head.Requests.Total() > 4 || deltas.Restart.Requests.Total() > 3 {
		t.Fatalf("%s: head read %d requests (want <= 4), restarted node %d (want <= 3)", deltas.Mode, deltas.Head.Requests.Total(), deltas.Restart.Requests.Total())
	}
}
