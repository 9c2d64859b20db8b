package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/auth/authtest"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/tlsutil"
	"github.com/graft-cluster/graft/volume"
)

// BenchmarkCommit_Security measures one client's commit latency on a
// one-node cluster without fsync (so the disk does not hide it) with
// plaintext and no auth, then with HTTPS and a token on every call: the
// per-commit cost of security (compare the minimum of several -count runs).
func BenchmarkCommit_Security(b *testing.B) {
	noSync := func(_ int, c *cluster.Config) { c.Raft.LogStore, c.Raft.NoSync = cluster.LogStoreBolt, true }
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "tls+token"}[secure]
		b.Run(name, func(b *testing.B) {
			opts := []clustertest.Option{noSync}
			var copts []client.Option
			if secure {
				ca, err := tlsutil.NewCA("bench CA", time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				f, err := ca.WriteFiles(b.TempDir(), "node", time.Hour, "127.0.0.1")
				if err != nil {
					b.Fatal(err)
				}
				h, err := tlsutil.Load(f)
				if err != nil {
					b.Fatal(err)
				}
				keys := authtest.NewKeys(b)
				opts = append(opts, func(_ int, c *cluster.Config) { c.TLS, c.Auth = h, keys.Verifier })
				pool, err := tlsutil.LoadPool(f.CA)
				if err != nil {
					b.Fatal(err)
				}
				copts = []client.Option{client.WithRootCAs(pool), client.WithToken(keys.Token(b, "*", auth.ScopeWrite))}
			}
			c := clustertest.Start(b, 1, opts...)
			c.ClientOptions = copts
			c.WaitLeader()
			cl := c.Client(0)
			ctx := context.Background()
			vid := volume.MustNewID()
			pages := []volume.PageWrite{{Idx: 1, Data: page('b')}}
			var base volume.LSN
			for range 50 { // warm the connection, the token cache, the leader hint
				s, err := cl.Commit(ctx, vid, base, 1, pages)
				if err != nil {
					b.Fatal(err)
				}
				base = s.LSN
			}
			b.ResetTimer()
			for range b.N {
				s, err := cl.Commit(ctx, vid, base, 1, pages)
				if err != nil {
					b.Fatal(err)
				}
				base = s.LSN
			}
		})
	}
}
