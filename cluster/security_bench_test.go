package cluster_test

import (
	"context"
	"fmt"
	"syscall"
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

// BenchmarkCommit_Security measures one client's commits on a cluster
// without fsync (so the disk does not hide it), with plaintext and no auth,
// then with HTTPS, mutual TLS between members and a token on every call:
// the per-commit cost of security, as latency (ns/op; compare the minimum
// of several -count runs) and as the CPU time of the whole process (all
// nodes and the client: cpu-ns/op, which a busy machine disturbs less).
// nodes=3 has Raft replication over the member links; pages=16 is a
// 64 KiB commit.
func BenchmarkCommit_Security(b *testing.B) {
	noSync := func(_ int, c *cluster.Config) {
		c.Raft.LogStore, c.Raft.NoSync = cluster.LogStoreBolt, true
		// Nothing flushes here: room for every benchmark iteration.
		c.Limits.MaxBufferBytes, c.Limits.MaxVolumeBufferBytes = 4<<30, 4<<30
	}
	for _, nodes := range []int{1, 3} {
		for _, npages := range []int{1, 16} {
			for _, secure := range []bool{false, true} {
				name := fmt.Sprintf("nodes=%d/pages=%d/%s", nodes, npages, map[bool]string{false: "plain", true: "tls+token"}[secure])
				b.Run(name, func(b *testing.B) { benchCommitSecurity(b, nodes, npages, secure, noSync) })
			}
		}
	}
}

func benchCommitSecurity(b *testing.B, nodes, npages int, secure bool, noSync clustertest.Option) {
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
	c := clustertest.Start(b, nodes, opts...)
	c.ClientOptions = copts
	cl := c.Client(c.WaitLeader())
	ctx := context.Background()
	vid := volume.MustNewID()
	var pages []volume.PageWrite
	for i := range npages {
		pages = append(pages, volume.PageWrite{Idx: volume.PageIdx(i + 1), Data: page('b')})
	}
	var base volume.LSN
	for range 50 { // warm the connections, the token cache, the leader hint
		s, err := cl.Commit(ctx, vid, base, uint32(npages), pages)
		if err != nil {
			b.Fatal(err)
		}
		base = s.LSN
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		s, err := cl.Commit(ctx, vid, base, uint32(npages), pages)
		if err != nil {
			b.Fatal(err)
		}
		base = s.LSN
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is the user+system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
