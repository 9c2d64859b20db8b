package flusher_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// genKeys returns, per checkpoint LSN of vid, its listed generations.
func (e *env) genKeys(ctx context.Context, vid volume.ID) map[volume.LSN][]uint64 {
	e.t.Helper()
	objs, err := e.store.List(ctx, segment.CheckpointPrefix(vid))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[volume.LSN][]uint64{}
	for _, o := range objs {
		_, lsn, gen, err := segment.ParseCheckpointGenKey(o.Key)
		if err != nil {
			e.t.Fatalf("checkpoint key %q: %v", o.Key, err)
		}
		out[lsn] = append(out[lsn], gen)
	}
	return out
}

// Compaction writes the retained checkpoints naming a picked segment again
// as their next generation, and GC's sweep (grace 0 here) deletes the
// picked segments and the superseded generations: after each GC step one
// generation per checkpoint is left, every retained snapshot reads right
// from the state and cold from the bucket, and no segment is dead weight.
func TestFlusher_CompactRewritesRetainedCheckpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(compactConfig(8))
	vid := volume.MustNewID()
	rewritten := 0
	for range 8 {
		e.rounds(ctx, fl, vid, 4)
		for _, gens := range e.genKeys(ctx, vid) {
			for _, g := range gens {
				if g > 0 {
					rewritten++
				}
			}
		}
		e.check(ctx)
		e.checkCold(ctx)
		// The sweep alone (the horizon stays): every snapshot still reads.
		if _, err := flusher.SweepGens(ctx, fl); err != nil {
			t.Fatal(err)
		}
		e.checkCold(ctx)
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
		for lsn, gens := range e.genKeys(ctx, vid) {
			if len(gens) != 1 {
				t.Fatalf("checkpoint %d has generations %v after a sweep with grace 0", lsn, gens)
			}
		}
		e.check(ctx)
		e.checkCold(ctx)
		e.noLeakedSegments(ctx, vid)
		e.noDeadSegments(ctx, vid)
	}
	if rewritten == 0 {
		t.Fatal("no checkpoint was rewritten: the test did not exercise generations")
	}
	t.Logf("%d generations written", rewritten)
}

// A long-lived reader (a node, an edge) that cached retained snapshots'
// checkpoints and views before compaction rewrote them reads them again
// after the sweep deleted what the old generations named: each read that
// finds a segment missing lists the generations and reads the new one.
func TestReader_StaleGenerationAfterSweep(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	fl := e.flusher(compactConfig(8))
	vid := volume.MustNewID()
	own := e.reader // the flusher's
	// A page cache of one page: reads go to the bucket.
	long, err := flusher.NewReader(e.store, flusher.ReaderConfig{Logger: slogDiscard(), PageCacheBytes: volume.PageSize})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		e.rounds(ctx, fl, vid, 4)
		e.reader = long
		e.check(ctx) // caches views, checkpoints and generation 0
		e.reader = own
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
		e.reader = long
		e.check(ctx) // after the sweep
		e.reader = own
	}
	if long.StaleRetries() == 0 {
		t.Fatal("the long-lived reader never found a swept location: the test did not exercise the retry")
	}
	t.Logf("stale retries: %d", long.StaleRetries())
}

// The sweep waits GCGrace after a newer generation appeared: until then
// the superseded generation and the segments only it names stay (a reader
// that listed it may still be reading), then both go.
func TestFlusher_SweepWaitsForGrace(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	e := newEnv(t, objstore.NewMemoryWithClock(now))
	cfg := compactConfig(8)
	cfg.GCGrace = time.Hour
	cfg.OrphanGrace = 0
	fl := e.flusher(cfg)
	flusher.SetClock(fl, now)
	vid := volume.MustNewID()
	superseded := func() int {
		n := 0
		for _, gens := range e.genKeys(ctx, vid) {
			n += len(gens) - 1
		}
		return n
	}
	for i := 0; len(e.sweepable(ctx, vid)) == 0; i++ {
		if i == 40 {
			segs, pages := fl.Compactions()
			t.Fatalf("nothing to sweep after 40 rounds (compacted %d segments, %d pages; state %+v)", segs, pages, e.log.f.History(vid))
		}
		advance(2 * time.Hour) // the open GC round passes its grace
		for range 2 {
			if _, err := fl.GCOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
		e.rounds(ctx, fl, vid, 2)
	}
	before, keys := superseded(), e.sweepable(ctx, vid)
	advance(30 * time.Minute)
	if _, err := fl.GCOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := superseded(); got < before {
		t.Fatalf("superseded generations %d -> %d within the grace", before, got)
	}
	for _, k := range keys {
		if _, err := e.store.Get(ctx, k); err != nil {
			t.Fatalf("within the grace: %s: %v", k, err)
		}
	}
	e.check(ctx)
	advance(31 * time.Minute)
	if _, err := fl.GCOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := superseded(); got != 0 {
		t.Fatalf("after the grace: %d superseded generations left", got)
	}
	for _, k := range keys {
		if _, err := e.store.Get(ctx, k); !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("after the grace: %s named only by superseded generations: %v", k, err)
		}
	}
	t.Logf("%d superseded generations and %d segments only they named swept", before, len(keys))
	e.check(ctx)
	e.checkCold(ctx)
	e.noLeakedSegments(ctx, vid)
}

// sweepable returns the keys of vid's segments that superseded checkpoint
// generations name and no newest generation and no log record does.
func (e *env) sweepable(ctx context.Context, vid volume.ID) []string {
	e.t.Helper()
	gens := e.genKeys(ctx, vid)
	named := map[string]bool{}
	for _, o := range e.list(ctx, segment.LogPrefix(vid)) {
		_, from, err := segment.ParseLogKey(o.Key)
		if err != nil {
			e.t.Fatal(err)
		}
		rec, err := e.reader.Record(ctx, vid, from)
		if err != nil {
			e.t.Fatal(err)
		}
		named[segment.SegmentKey(vid, rec.Segment)] = true
	}
	old := map[string]bool{}
	for lsn, gs := range gens {
		top := slices.Max(gs)
		for _, g := range gs {
			ck := e.checkpointObject(ctx, segment.CheckpointGenKey(vid, lsn, g))
			for _, sid := range ck.Segments {
				if g == top {
					named[segment.SegmentKey(vid, sid)] = true
				} else {
					old[segment.SegmentKey(vid, sid)] = true
				}
			}
		}
	}
	var out []string
	for k := range old {
		if !named[k] {
			out = append(out, k)
		}
	}
	return out
}

func (e *env) list(ctx context.Context, prefix string) []objstore.ObjectInfo {
	e.t.Helper()
	objs, err := e.store.List(ctx, prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return objs
}

// A generation PUT that finds its key taken (another leader rewrote the
// checkpoint first) keeps that generation; the checkpoint step goes on and
// every snapshot still reads right.
func TestFlusher_GenerationKeyTakenKeepsTheOther(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, objstore.NewMemory())
	cfg := compactConfig(8)
	cfg.CheckpointRecords = 0
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	took := 0
	for i := 0; i < 30 && took == 0; i++ {
		e.rounds(ctx, fl, vid, 3)
		// Claim generation max+1 of every checkpoint with a copy of its
		// newest generation (a valid rewrite that moved nothing).
		for lsn, gens := range e.genKeys(ctx, vid) {
			top := gens[0]
			for _, g := range gens {
				top = max(top, g)
			}
			b, err := e.store.Get(ctx, segment.CheckpointGenKey(vid, lsn, top))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.store.PutIfAbsent(ctx, segment.CheckpointGenKey(vid, lsn, top+1), b); err != nil {
				t.Fatal(err)
			}
		}
		before := len(e.genKeys(ctx, vid))
		if ok, err := fl.Checkpoint(ctx, vid); err != nil || !ok {
			t.Fatalf("checkpoint: %v %v", ok, err)
		}
		if segs, _ := fl.Compactions(); segs > 0 && before > 1 {
			took++
		}
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
		e.check(ctx)
		e.checkCold(ctx)
		e.noLeakedSegments(ctx, vid)
	}
	if took == 0 {
		t.Fatal("no compaction ran against taken generation keys")
	}
}

// isGenKey reports whether key is a checkpoint generation beyond the first.
func isGenKey(key string) bool {
	_, _, gen, err := segment.ParseCheckpointGenKey(key)
	return err == nil && gen > 0 && strings.Contains(key, "/checkpoints/")
}

// The planted bug graft_bug_sweep_ignores_records (the sweep deletes
// segments log records still name) is caught by
// TestFlusher_CompactRewritesRetainedCheckpoints.
func TestFlusher_SweepPlantedBugIsCaught(t *testing.T) {
	plantedIsCaught(t, "graft_bug_sweep_ignores_records", "TestFlusher_CompactRewritesRetainedCheckpoints", "the planted sweep bug was not caught")
}

// plantedIsCaught builds the flusher tests with the planted bug tag and
// checks that test fails there, with a failure line containing want (the
// test's name when empty); notCaught words the failure if it passes.
func plantedIsCaught(t *testing.T, tag, test, notCaught string, want ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the flusher tests with a planted bug")
	}
	if os.Getenv("GRAFT_PLANTED_CHILD") != "" {
		t.Skip("already the planted build")
	}
	cmd := exec.Command("go", "test", "-count=1", "-tags", tag, "-run", "^"+test+"$", ".")
	cmd.Env = append(os.Environ(), "GRAFT_PLANTED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("%s:\n%s", notCaught, out)
	}
	line := "_test.go"
	if len(want) > 0 {
		line = want[0]
	}
	if !strings.Contains(string(out), "FAIL") || !strings.Contains(string(out), test) || !strings.Contains(string(out), line) {
		t.Fatalf("the planted build failed for another reason: %v\n%s", err, out)
	}
	t.Logf("caught: %s", firstLine(string(out), line))
}

// The planted bug graft_bug_compact_death_positions (compaction locates
// moved versions by the order it grouped them in, not the segment's index
// order) is caught by TestFlusher_CompactRewritesRetainedCheckpoints.
func TestFlusher_CompactPositionPlantedBugIsCaught(t *testing.T) {
	plantedIsCaught(t, "graft_bug_compact_death_positions", "TestFlusher_CompactRewritesRetainedCheckpoints", "the planted position bug was not caught")
}
