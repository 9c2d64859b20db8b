package cluster_test

import (
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// Every link reuses its TLS connections: commits to the leader (client
// link, Raft replication), commits and linearizable reads through a
// follower (forwarding over HTTP/2 + mutual TLS) cost no handshake per
// call once the connections are up. A transport that re-dialed per call
// would add at least one handshake per call.
func TestCluster_TLSConnectionReuse(t *testing.T) {
	ca, h := newTLS(t)
	c := clustertest.Start(t, 3, func(i int, cfg *cluster.Config) { cfg.TLS = h })
	c.ClientOptions = []client.Option{client.WithRootCAs(caPool(ca))}
	ctx := testCtx(t)
	l := c.WaitLeader()
	f := (l + 1) % 3
	lc, fc := c.Client(l), c.Client(f)
	vid := volume.MustNewID()
	var base volume.LSN
	round := func() {
		t.Helper()
		s, err := lc.Commit(ctx, vid, base, 2, []volume.PageWrite{{Idx: 1, Data: page('l')}})
		if err != nil {
			t.Fatal(err)
		}
		s, err = fc.Commit(ctx, vid, s.LSN, 2, []volume.PageWrite{{Idx: 2, Data: page('f')}})
		if err != nil {
			t.Fatal(err)
		}
		base = s.LSN
		if _, _, err := fc.ReadPages(ctx, vid, 0, []volume.PageIdx{1}, client.ReadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // opens every connection
		round()
	}
	s0, c0 := h.Handshakes()
	if s0 == 0 || c0 == 0 {
		t.Fatalf("handshakes counted: server %d client %d, want both > 0", s0, c0)
	}
	const calls = 40
	for range calls {
		round()
	}
	s1, c1 := h.Handshakes()
	// Slack for Raft opening one more pooled connection (heartbeats
	// overlapping a replication RPC); a per-call dial would add >= calls.
	if s1-s0 > 2 || c1-c0 > 2 {
		t.Fatalf("%d rounds of 3 calls added %d server and %d client handshakes; connections are not reused", calls, s1-s0, c1-c0)
	}
	t.Logf("handshakes: server %d -> %d, client %d -> %d over %d rounds", s0, s1, c0, c1, calls)
}
