package cluster_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
// (which would lose the node's log and vote). That includes a directory
// of the old default (bolt) opened with the default configuration (wal).
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

// A follower whose uncommitted tail a new leader overwrites (Raft's
// DeleteRange up to the last index, then appends) must still open its wal
// log after a restart. hashicorp/raft-wal v0.4.0 marked the truncated tail
// segment sealed without writing its index block, so after a restart every
// read of it failed ("sealed segment has no index block") and
// hashicorp/raft panicked in NewRaft: the node could not start (the
// consistency suite found it: register, kill,kill-leader, seed 1).
// Upstream hashicorp/raft-wal#31, fixed by #33 in v0.4.1.
func TestOpenLogStore_WALTailTruncation(t *testing.T) {
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
	if err := s.StoreLogs([]*raft.Log{{Index: 10, Term: 2, Data: []byte("y")}, {Index: 11, Term: 2, Data: []byte("z")}}); err != nil {
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
	if first, err := s.FirstIndex(); err != nil || first != 1 {
		t.Fatalf("FirstIndex = %d, %v; want 1", first, err)
	}
	if last, err := s.LastIndex(); err != nil || last != 11 {
		t.Fatalf("LastIndex = %d, %v; want 11", last, err)
	}
	for i := uint64(1); i <= 11; i++ {
		want := raft.Log{Index: i, Term: 1, Data: []byte("x")}
		switch i {
		case 10:
			want.Term, want.Data = 2, []byte("y")
		case 11:
			want.Term, want.Data = 2, []byte("z")
		}
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d) after tail truncation and reopen: %v", i, err)
		}
		if l.Index != want.Index || l.Term != want.Term || !bytes.Equal(l.Data, want.Data) {
			t.Fatalf("GetLog(%d) = index %d term %d %q; want term %d %q", i, l.Index, l.Term, l.Data, want.Term, want.Data)
		}
	}
}

// Closing a wal log store releases its files: the same process can open
// the directory again at once (a node restarted in-process, as the
// in-process cluster tests do). hashicorp/raft-wal v0.4.0's Close left its
// bbolt meta DB open, so the reopen blocked forever in flock
// (hashicorp/raft-wal#28, fixed in v0.4.1).
func TestOpenLogStore_WALReopen(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		opened := make(chan error, 1)
		var s cluster.RaftStore
		go func() {
			var err error
			s, err = cluster.OpenLogStore(dir, cluster.RaftTuning{LogStore: cluster.LogStoreWAL})
			opened <- err
		}()
		select {
		case err := <-opened:
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("open %d of the same wal directory still blocked after 10s: the previous Close did not release the meta DB's file lock", i)
		}
		idx := uint64(i + 1)
		if last, err := s.LastIndex(); err != nil || last != idx-1 {
			t.Fatalf("open %d: LastIndex = %d, %v; want %d", i, last, err, idx-1)
		}
		if err := s.StoreLog(&raft.Log{Index: idx, Term: 1, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
}

// Unset, the log store is what the data directory holds (a node created
// when bolt was the default restarts on bolt), and wal for a new one.
func TestOpenLogStore_Default(t *testing.T) {
	if got := cluster.DefaultConfig().Raft.LogStore; got != "" {
		t.Fatalf("default log store %q, want empty (auto)", got)
	}
	for _, wrote := range []string{cluster.LogStoreBolt, cluster.LogStoreWAL, ""} {
		dir := t.TempDir()
		s, err := cluster.OpenLogStore(dir, cluster.RaftTuning{LogStore: wrote})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.StoreLog(&raft.Log{Index: 1, Term: 1, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		want := wrote
		if want == "" {
			want = cluster.LogStoreWAL
		}
		if _, err := os.Stat(filepath.Join(dir, map[string]string{cluster.LogStoreBolt: "raft.db", cluster.LogStoreWAL: "wal"}[want])); err != nil {
			t.Fatalf("new dir opened with %q: no %s store: %v", wrote, want, err)
		}
		s, err = cluster.OpenLogStore(dir, cluster.RaftTuning{})
		if err != nil {
			t.Fatalf("reopen a %s dir with the default: %v", want, err)
		}
		l := new(raft.Log)
		if err := s.GetLog(1, l); err != nil || string(l.Data) != "x" {
			t.Fatalf("reopened %s dir: entry 1 = %q, %v", want, l.Data, err)
		}
		s.Close()
	}
}
