package cluster_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// TestNode_CommitBatch holds the leader's FSM so that concurrent commits,
// half of them forwarded by a follower, queue and are proposed in batches,
// then checks that every caller got its own commit's result: on each
// volume exactly one content wins LSN 1, the callers that sent it (two send
// identical retries) get LSN 1 and its hash, every other caller a conflict.
func TestNode_CommitBatch(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	l := c.WaitLeader()
	f := (l + 1) % 3
	leader := c.Nodes[l]
	clients := []*client.Client{c.Client(l), c.Client(f)}
	// One commit through each first: recovery done, leader found.
	for i, cl := range clients {
		if _, err := cl.Commit(ctx, volume.MustNewID(), 0, 1, []volume.PageWrite{{Idx: 1, Data: page('x')}}); err != nil {
			t.Fatalf("warm-up commit %d: %v", i, err)
		}
	}
	_, _, entries0, commits0 := leader.CommitBatching()
	gate := make(chan struct{})
	leader.SetHooks(cluster.Hooks{BeforeApply: func() { <-gate }})
	released := false
	release := func() {
		if !released {
			released = true
			leader.SetHooks(cluster.Hooks{})
			close(gate)
		}
	}
	defer release()

	const volumes, contents = 4, 5 // content 0 is sent twice: identical retries
	vids := make([]volume.ID, volumes)
	for i := range vids {
		vids[i] = volume.MustNewID()
	}
	type call struct {
		vid     volume.ID
		content byte
		snap    volume.Snapshot
		err     error
	}
	var calls []*call
	for _, vid := range vids {
		for k := range contents + 1 {
			calls = append(calls, &call{vid: vid, content: byte(max(k-1, 0))})
		}
	}
	var wg sync.WaitGroup
	for i, cl := range calls {
		wg.Go(func() {
			cl.snap, cl.err = clients[i%2].Commit(ctx, cl.vid, 0, 1, []volume.PageWrite{{Idx: 1, Data: page('a' + cl.content)}})
		})
	}
	// Wait until every commit reached the leader's proposer: in the two
	// in-flight entries, held by the proposer or queued.
	deadline := time.Now().Add(30 * time.Second)
	for {
		queued, full, _, commits := leader.CommitBatching()
		if full && int(commits-commits0)+queued+1 >= len(calls) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("commits did not queue: %d queued, slots full %v, %d proposed of %d", queued, full, commits, len(calls))
		}
		time.Sleep(5 * time.Millisecond)
	}
	release()
	wg.Wait()

	_, _, entries, commits := leader.CommitBatching()
	entries, commits = entries-entries0, commits-commits0
	if commits < uint64(len(calls)) || 2*entries > commits {
		t.Fatalf("%d commits in %d entries: want all %d commits, in batches", commits, entries, len(calls))
	}
	for _, vid := range vids {
		winner := -1
		for _, cl := range calls {
			if cl.vid != vid || cl.err != nil {
				continue
			}
			if cl.snap.LSN != 1 || cl.snap.VID != vid {
				t.Fatalf("volume %s content %c: got %v", vid, 'a'+cl.content, cl.snap)
			}
			if winner >= 0 && winner != int(cl.content) {
				t.Fatalf("volume %s: contents %c and %c both acknowledged at LSN 1", vid, 'a'+winner, 'a'+cl.content)
			}
			winner = int(cl.content)
			_, pages, err := c.Client(l).ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{})
			if err != nil || pages[0].Data[0] != 'a'+cl.content {
				t.Fatalf("volume %s at LSN 1: %v, want the acknowledged content %c", vid, err, 'a'+cl.content)
			}
		}
		if winner < 0 {
			t.Fatalf("volume %s: no commit acknowledged", vid)
		}
		for _, cl := range calls {
			if cl.vid != vid {
				continue
			}
			if int(cl.content) == winner && cl.err != nil {
				t.Fatalf("volume %s: a caller of the winning content %c got %v", vid, 'a'+winner, cl.err)
			}
			if int(cl.content) != winner && !errors.Is(cl.err, client.ErrConflict) {
				t.Fatalf("volume %s content %c: got %v, want a conflict", vid, 'a'+cl.content, cl.err)
			}
		}
	}
	t.Logf("%d commits in %d entries", commits, entries)
}

// Without concurrency nothing waits for a batch: each commit is proposed
// alone, as its own entry.
func TestNode_CommitBatchSequential(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := testCtx(t)
	l := c.WaitLeader()
	cl := c.Client(l)
	vid := volume.MustNewID()
	_, _, entries0, commits0 := c.Nodes[l].CommitBatching()
	for i := range 5 {
		if _, err := cl.Commit(ctx, vid, volume.LSN(i), 1, []volume.PageWrite{{Idx: 1, Data: page(byte(i))}}); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	_, _, entries, commits := c.Nodes[l].CommitBatching()
	// A client retry after a slow attempt would add a commit, still alone.
	if commits-commits0 < 5 || entries-entries0 != commits-commits0 {
		t.Fatalf("5 sequential commits went out as %d commits in %d entries, want one entry each", commits-commits0, entries-entries0)
	}
}
