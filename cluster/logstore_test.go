package cluster_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// Both log stores carry a cluster through commits, a leader crash and a
// restart from disk.
func TestCluster_LogStores(t *testing.T) {
	for _, store := range []string{cluster.LogStoreBolt, cluster.LogStoreWAL} {
		t.Run(store, func(t *testing.T) {
			c := clustertest.Start(t, 3, func(_ int, cfg *cluster.Config) { cfg.Raft.LogStore = store })
			ctx := testCtx(t)
			cl := c.Client(0, 1, 2)
			vid := volume.MustNewID()
			for i := range 20 {
				if _, err := cl.Commit(ctx, vid, volume.LSN(i), 2, []volume.PageWrite{{Idx: volume.PageIdx(1 + i%2), Data: page(byte(i))}}); err != nil {
					t.Fatalf("commit %d: %v", i, err)
				}
			}
			l := c.WaitLeader()
			c.Kill(l)
			c.WaitLeader()
			c.Restart(l)
			// The restarted node replays its log from disk and serves lsn 20.
			rc := c.Client(l)
			_, pages, err := rc.ReadPages(ctx, vid, 20, []volume.PageIdx{1, 2}, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: 20})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pages[1].Data, page(19)) || !bytes.Equal(pages[0].Data, page(18)) {
				t.Fatalf("restarted node serves versions %d, %d", pages[0].LSN, pages[1].LSN)
			}
		})
	}
}

// A data directory keeps the log store it was created with: opening it
// with the other one fails with a clear error instead of starting empty
// (which would lose the node's log and vote).
func TestOpenLogStore_Mismatch(t *testing.T) {
	for _, tc := range []struct{ wrote, open string }{
		{cluster.LogStoreBolt, cluster.LogStoreWAL},
		{cluster.LogStoreWAL, cluster.LogStoreBolt},
	} {
		dir := t.TempDir()
		s, err := cluster.OpenLogStore(dir, cluster.RaftTuning{LogStore: tc.wrote})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.StoreLog(&raft.Log{Index: 1, Term: 1, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = cluster.OpenLogStore(dir, cluster.RaftTuning{LogStore: tc.open})
		if !errors.Is(err, cluster.ErrLogStoreMismatch) || !strings.Contains(err.Error(), "--raft-log-store "+tc.wrote) {
			t.Fatalf("open a %s dir as %s: %v; want ErrLogStoreMismatch naming --raft-log-store %s", tc.wrote, tc.open, err, tc.wrote)
		}
		s, err = cluster.OpenLogStore(dir, cluster.RaftTuning{LogStore: tc.wrote})
		if err != nil {
			t.Fatalf("reopen %s: %v", tc.wrote, err)
		}
		s.Close()
	}
}

// TestRaftWAL_TailTruncationBug reproduces the dependency bug the
// consistency suite found (register, kill+kill-leader, seed 1, on raft-wal):
// hashicorp/raft-wal v0.4.0 marks the tail segment sealed when Raft
// truncates the log's tail (DeleteRange up to the last index, which a
// follower does when a new leader overwrites entries it never committed)
// without writing the segment's index block, so after any restart every
// read of that segment fails with "sealed segment has no index block" and
// hashicorp/raft panics in NewRaft: the node cannot start. Upstream:
// hashicorp/raft-wal#31, fixed by #33, in no release yet. Mitigation: the
// default log store is bolt; wal is for benchmarks only and a node on it
// warns. When this test fails, raft-wal has been fixed: rerun make bench
// and reconsider the default (cluster.DefaultConfig).
func TestRaftWAL_TailTruncationBug(t *testing.T) {
	dir := t.TempDir()
	s, err := cluster.OpenLogStore(dir, cluster.RaftTuning{LogStore: cluster.LogStoreWAL})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Data: []byte("x")})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	// A new leader's entry replaces the uncommitted entry 10.
	if err := s.DeleteRange(10, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 10, Term: 2, Data: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = cluster.OpenLogStore(dir, cluster.RaftTuning{LogStore: cluster.LogStoreWAL})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	var l raft.Log
	err = s.GetLog(1, &l)
	if err == nil || !strings.Contains(err.Error(), "sealed segment has no index block") {
		t.Fatalf("GetLog(1) after tail truncation and reopen = %v; raft-wal#31 seems fixed: rerun make bench and reconsider the default log store", err)
	}
	t.Logf("raft-wal#31 still present: %v", err)
}
