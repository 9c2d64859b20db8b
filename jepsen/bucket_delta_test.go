package jepsen

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// flushedVolume writes one volume through the real flusher (an in-process
// FSM for Raft), for the bucket checkers' tests.
type flushedVolume struct {
	st  objstore.Store
	lg  *fsm.LocalLog
	r   *flusher.Reader
	fl  *flusher.Flusher
	vid volume.ID
	lsn volume.LSN
	rng *rand.Rand
}

func newFlushedVolume(t *testing.T, st objstore.Store, cfg flusher.Config, seed uint64) *flushedVolume {
	t.Helper()
	f := fsm.New()
	v := &flushedVolume{st: st, lg: fsm.NewLocalLog(f), vid: volume.MustNewID(), rng: rand.New(rand.NewPCG(seed, seed+1))}
	var err error
	if v.r, err = flusher.NewReader(st, flusher.DefaultReaderConfig()); err != nil {
		t.Fatal(err)
	}
	if v.fl, err = flusher.New(cfg, f, st, v.r, v.lg, nil, nil); err != nil {
		t.Fatal(err)
	}
	return v
}

// commitRandom commits 1-3 one-page commits to pages 1..pageCount.
func (v *flushedVolume) commitRandom(t *testing.T, pageCount int) {
	t.Helper()
	for range 1 + v.rng.IntN(3) {
		pages := []volume.PageWrite{{Idx: volume.PageIdx(1 + v.rng.IntN(pageCount)), Data: make([]byte, volume.PageSize)}}
		pages[0].Data[0] = byte(v.lsn)
		hash := volume.CommitHash(v.vid, v.lsn+1, uint32(pageCount), pages)
		resp, _ := v.lg.Propose(t.Context(), fsm.EncodeCommit(&fsm.CommitCommand{VID: v.vid, BaseLSN: v.lsn, PageCount: uint32(pageCount), TimeUnixMs: 1, Hash: hash, Pages: pages}))
		if cr, ok := resp.(*fsm.CommitResult); !ok || cr.Err != nil {
			t.Fatalf("commit: %v", resp)
		}
		v.lsn++
	}
}

// TestReadBucket_DeltasMatchTheChain writes a volume through the real
// flusher (deltas on, a checkpoint every 4 records) and checks that every
// delta it left names exactly the page versions of its snapshot. Built with
// graft_bug_delta_omit_last (each delta omits its round's last commit) it
// must fail: TestReadBucket_PlantedDeltaBugIsCaught runs it so.
func TestReadBucket_DeltasMatchTheChain(t *testing.T) {
	ctx := context.Background()
	url := "file://" + t.TempDir()
	st, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := flusher.DefaultConfig()
	cfg.Interval, cfg.OrphanInterval, cfg.CheckpointRecords, cfg.CheckpointBytes = 0, 0, 4, 0
	v := newFlushedVolume(t, st, cfg, 3)
	vid, r := v.vid, v.r
	for range 15 {
		v.commitRandom(t, 8)
		if err := v.fl.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := v.fl.CheckpointOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readBucket(ctx, url, []volume.ID{vid}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.missing) > 0 {
		t.Fatalf("bucket anomalies:\n%s", strings.Join(got.missing, "\n"))
	}
	var recs []*segment.Record
	for _, e := range got.chains[vid.String()] {
		if rec, err := r.Record(ctx, vid, volume.LSN(e.LSN)); err == nil {
			recs = append(recs, rec)
		}
	}
	miss, checked, err := checkDeltas(ctx, st, vid, recs)
	if err != nil || len(miss) > 0 || checked != 15 {
		t.Fatalf("checkDeltas: %d checked (want 15), %q, %v", checked, miss, err)
	}
}

func TestReadBucket_PlantedDeltaBugIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the jepsen tests with a planted bug")
	}
	if os.Getenv("GRAFT_PLANTED_CHILD") != "" {
		t.Skip("already the planted build")
	}
	cmd := exec.Command("go", "test", "-count=1", "-tags", "graft_bug_delta_omit_last", "-run", "^TestReadBucket_DeltasMatchTheChain$", ".")
	cmd.Env = append(os.Environ(), "GRAFT_PLANTED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the planted delta bug was not caught:\n%s", out)
	}
	if !strings.Contains(string(out), "omits page") {
		t.Fatalf("the planted build failed for another reason: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "omits page") {
			t.Logf("caught: %s", strings.TrimSpace(line))
			break
		}
	}
}
