package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graft-cluster/graft/bench"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// BenchmarkVFS_CommitLatency compares, on one three-node cluster, a raw
// replica commit (one page written, Writer.Commit, Push) with a SQLite
// transaction through the VFS (one row inserted, graft_sync=remote). Each
// writer alternates the two on its own two volumes, so both see the same
// load; 1 and 16 concurrent writers. It reports each one's p50 and p99 and
// the ratio of the p50s.
func BenchmarkVFS_CommitLatency(b *testing.B) {
	c := clustertest.Start(b, 3, patientRaft)
	name, rt := registerRuntime(b, c.Endpoints())
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			type pair struct{ raw, sqlite func() error }
			pairs := make([]pair, writers)
			for i := range pairs {
				v, err := rt.Volume(context.Background(), volume.MustNewID())
				if err != nil {
					b.Fatal(err)
				}
				page := make([]byte, volume.PageSize)
				pairs[i].raw = func() error {
					ctx := context.Background()
					w := v.Writer()
					page[0]++
					if err := w.WritePage(2, page); err != nil {
						return err
					}
					if _, err := w.Commit(ctx); err != nil {
						return err
					}
					_, err := v.Push(ctx)
					return err
				}
				db, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?vfs=graft&graft_runtime=%s", volume.MustNewID(), name))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				db.SetMaxOpenConns(1)
				if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
					b.Fatal(err)
				}
				pairs[i].sqlite = func() error {
					_, err := db.Exec("INSERT INTO t (v) VALUES ('row')")
					return err
				}
			}
			var (
				mu          sync.Mutex
				raw, sqlite []time.Duration
				left        atomic.Int64
				wg          sync.WaitGroup
				failed      atomic.Value
			)
			timed := func(op func() error, into *[]time.Duration) bool {
				start := time.Now()
				if err := op(); err != nil {
					failed.Store(err)
					return false
				}
				d := time.Since(start)
				mu.Lock()
				*into = append(*into, d)
				mu.Unlock()
				return true
			}
			left.Store(int64(b.N))
			b.ResetTimer()
			for _, p := range pairs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						if !timed(p.raw, &raw) || !timed(p.sqlite, &sqlite) {
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			r, s := bench.Summarize(raw, 0), bench.Summarize(sqlite, 0)
			b.ReportMetric(float64(r.P50.Microseconds()), "raw-p50-µs")
			b.ReportMetric(float64(s.P50.Microseconds()), "sqlite-p50-µs")
			b.ReportMetric(float64(r.P99.Microseconds()), "raw-p99-µs")
			b.ReportMetric(float64(s.P99.Microseconds()), "sqlite-p99-µs")
			b.ReportMetric(float64(s.P50)/float64(r.P50), "p50-ratio")
		})
	}
}
