package cluster_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/auth/authtest"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// Every RPC, on the leader and on a follower (which forwards with the
// caller's token, checked again by the leader): no token, a garbage one,
// another key's, an expired one, a revoked one (revoked through a
// follower: every node refuses it), one scope too low and another volume
// prefix are refused with the right code; the right token passes. A
// denial is logged once, with the token's ID and never the token.
func TestCluster_Auth(t *testing.T) {
	keys := authtest.NewKeys(t)
	var logs clustertest.SyncBuffer
	c := clustertest.Start(t, 3, func(i int, cfg *cluster.Config) {
		cfg.Auth = keys.Verifier
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	admin := keys.Token(t, "*", auth.ScopeAdmin)
	c.ClientOptions = []client.Option{client.WithToken(admin)}
	ctx := testCtx(t)
	l := c.WaitLeader()
	f := (l + 1) % 3
	vid := volume.MustNewID()
	if _, err := c.Client(f).Commit(ctx, vid, 0, 1, []volume.PageWrite{{Idx: 1, Data: page('a')}}); err != nil {
		t.Fatalf("commit with an admin token through a follower: %v", err)
	}

	revoked := keys.TokenID(t, "revoked-1", "*", auth.ScopeAdmin)
	if _, err := c.Client(f).Cluster(0).RevokeToken(ctx, connect.NewRequest(&graftv1.RevokeTokenRequest{Id: "revoked-1"})); err != nil {
		t.Fatalf("revoke through a follower: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.Nodes {
		for !n.FSM().TokenRevoked("revoked-1") {
			if time.Now().After(deadline) {
				t.Fatalf("%s never applied the revocation", n.ID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	other := volume.MustNewID().String()
	cases := authtest.Cases(t, keys, revoked, other)
	calls := authtest.Calls(vid, c.Nodes[l].ID())
	for _, i := range []int{l, f} {
		t.Run(c.Nodes[i].ID(), func(t *testing.T) {
			cl, err := client.New([]string{c.Endpoint(i)}) // no token of its own
			if err != nil {
				t.Fatal(err)
			}
			authtest.Run(t, ctx, keys, cl.Volume(0), cl.Cluster(0), calls, cases)
		})
	}

	// A write token of the volume's prefix commits; a read token reads but
	// cannot commit.
	prefix := vid.String()[:6]
	w, err := client.New([]string{c.Endpoint(f)}, client.WithToken(keys.Token(t, prefix, auth.ScopeWrite)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx, vid, 1, 1, []volume.PageWrite{{Idx: 1, Data: page('b')}}); err != nil {
		t.Fatalf("commit with a write token of the prefix: %v", err)
	}

	// A fixed-LSN read is immutable, but with tokens on a shared cache (a
	// CDN) must not keep it: it would serve it to callers without one.
	rreq := connect.NewRequest(&graftv1.ReadPagesRequest{Vid: vid.String(), Lsn: 1, Pages: []uint32{1}})
	rresp, err := c.Client(l).Volume(0).ReadPages(ctx, rreq)
	if err != nil {
		t.Fatal(err)
	}
	if cc := rresp.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Fatalf("Cache-Control of a fixed read with auth on = %q, want private", cc)
	}

	logs.Reset()
	r, err := client.New([]string{c.Endpoint(f)}, client.WithToken(revoked), client.WithAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Status(ctx); connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("status with a revoked token: %v", err)
	}
	out := logs.String()
	if n := strings.Count(out, "request denied"); n != 1 || !strings.Contains(out, "token_id=revoked-1") || !strings.Contains(out, "method=/graft.v1.ClusterService/Status") {
		t.Fatalf("want one denial line with the token id and method, got %d:\n%s", n, out)
	}
	for _, tok := range []string{admin, revoked} {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("a token appears in the logs")
		}
	}
}
