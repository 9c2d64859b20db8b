package cluster_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
)

// TestNode_RaftLogsThroughSlog: hashicorp/raft's own lines arrive in the
// node's slog handler (JSON here), with the node ID and the raft
// component on each, at the level RaftLogLevel lets through.
func TestNode_RaftLogsThroughSlog(t *testing.T) {
	var buf clustertest.SyncBuffer
	c := clustertest.Start(t, 1, func(_ int, cfg *cluster.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cfg.RaftLogOutput = nil
		cfg.RaftLogLevel = "info"
	})
	id := c.Nodes[0].ID()
	var raftLines, lines int
	deadline := time.Now().Add(10 * time.Second)
	for {
		raftLines, lines = 0, 0
		sc := bufio.NewScanner(bytes.NewReader([]byte(buf.String())))
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("a line that is not the handler's JSON: %q: %v", sc.Text(), err)
			}
			lines++
			if rec["node"] != id {
				t.Fatalf("line without node=%s: %s", id, sc.Text())
			}
			if rec["component"] == "raft" && rec["level"] == "INFO" && rec["msg"] == "entering leader state" {
				raftLines++
			}
		}
		if raftLines > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if raftLines == 0 {
		t.Fatalf("no raft line \"entering leader state\" at INFO with component=raft in %d lines:\n%s", lines, buf.String())
	}
}
