package edge

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// An edge reading an old snapshot from the bucket below what retention
// left answers the cluster's out_of_range error naming the oldest readable
// lsn, itself (its upstream here is unreachable), instead of a
// not-flushed/missing-object failure.
func TestEdge_BucketReadBelowRetentionIsOutOfRange(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	url := "file://" + t.TempDir()
	st, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := fsm.New()
	lg := fsm.NewLocalLog(f)
	r, err := flusher.NewReader(st, flusher.DefaultReaderConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := flusher.DefaultConfig()
	cfg.Interval, cfg.OrphanInterval, cfg.GCInterval, cfg.GCGrace = 0, 0, 0, 0
	cfg.CheckpointRecords, cfg.CheckpointBytes, cfg.RetainLSNs = 3, 0, 4
	fl, err := flusher.New(cfg, f, st, r, lg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	vid := volume.MustNewID()
	for lsn := volume.LSN(0); lsn < 24; lsn++ {
		pages := []volume.PageWrite{{Idx: 1, Data: fill(0, lsn+1, 1)}}
		hash := volume.CommitHash(vid, lsn+1, 4, pages)
		resp, _ := lg.Propose(ctx, fsm.EncodeCommit(&fsm.CommitCommand{VID: vid, BaseLSN: lsn, PageCount: 4, TimeUnixMs: 1, Hash: hash, Pages: pages}))
		if cr, ok := resp.(*fsm.CommitResult); !ok || cr.Err != nil {
			t.Fatalf("commit: %v", resp)
		}
		if err := fl.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := fl.CheckpointOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := fl.GCOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	oldest := f.History(vid).Horizon
	if oldest <= 2 {
		t.Fatalf("no GC: horizon %d", oldest)
	}
	te := startEdge(t, func(c *Config) {
		c.Upstream = []string{"http://127.0.0.1:1"}
		c.ObjectStore = url
	})
	cl, err := client.New([]string{te.URL}, client.WithAttemptTimeout(2*time.Second), client.WithAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	// The first read of the volume goes upstream (unreachable) while the
	// edge lists the bucket in the background; then the bucket answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, pages, err := cl.ReadPages(ctx, vid, 24, []volume.PageIdx{1}, client.ReadOptions{})
		if err == nil {
			if pages[0].LSN != 24 {
				t.Fatalf("head read: version %d, want 24", pages[0].LSN)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge never served the head from the bucket: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _, err = cl.ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{})
	if connect.CodeOf(err) != connect.CodeOutOfRange || !strings.Contains(err.Error(), "the oldest readable lsn is") {
		t.Fatalf("read at 1 below the bucket's oldest: %v, want out_of_range naming the oldest readable lsn", err)
	}
	t.Logf("edge answered: %v", err)
}
