package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// TestVFS_Cluster_LazyPointQueries measures laziness: a database written once
// by replica A; a cold replica B pulls (no page data moves) and runs 100
// indexed point queries. It logs the pages B fetched against the database's
// pages (what downloading the whole file, as a Litestream restore does,
// moves). GRAFT_SQLITE_LAZY_ROWS sets the row count (default 100000),
// GRAFT_SQLITE_LAZY_BLOB the random bytes per row (default 16); 1000000 and
// 100 make a ~256 MiB database.
func TestVFS_Cluster_LazyPointQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a multi-megabyte database")
	}
	rows := 100_000
	if s := os.Getenv("GRAFT_SQLITE_LAZY_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		rows = n
	}
	blob := 16 // random bytes per row (hex in the value)
	if s := os.Getenv("GRAFT_SQLITE_LAZY_BLOB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		blob = n
	}
	perTxn := max(1, 10_000*16/blob)
	const maxPages = 4096
	c := clustertest.Start(t, 3, patientRaft, func(_ int, cfg *cluster.Config) {
		cfg.Limits.MaxPagesPerCommit = maxPages
		cfg.Limits.MaxRequestBytes = 64 << 20
		cfg.Limits.MaxVolumeBufferBytes = 1 << 30
		cfg.Limits.MaxBufferBytes = 2 << 30
	})
	vid := volume.MustNewID()
	a, _ := registerRuntime(t, c.Endpoints())
	dbA := openDB(t, a, vid, fmt.Sprintf("&graft_max_pages=%d&graft_timeout=2m", maxPages))
	dbA.SetMaxOpenConns(1)
	exec(t, dbA, "CREATE TABLE kv (id INTEGER PRIMARY KEY, k TEXT NOT NULL, v TEXT NOT NULL)", "CREATE UNIQUE INDEX kv_k ON kv(k)")
	for start := 0; start < rows; start += perTxn {
		_, err := dbA.Exec(`INSERT INTO kv (k, v) SELECT printf('key%08d', value), printf('value-%08d-%s', value, hex(randomblob(?)))
			FROM generate_series(?, ?)`, blob, start, min(start+perTxn, rows)-1)
		if err != nil {
			t.Fatalf("insert rows %d..: %v", start, err)
		}
	}

	b, rtB := registerRuntime(t, c.Endpoints())
	dbB := openDB(t, b, vid, "")
	queryString(t, dbB, "PRAGMA graft_pull")
	v, err := rtB.Volume(context.Background(), vid)
	if err != nil {
		t.Fatal(err)
	}
	total := v.Snapshot().PageCount
	before := v.Stats()
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		i := r.IntN(rows)
		var got string
		if err := dbB.QueryRow("SELECT v FROM kv WHERE k = ?", fmt.Sprintf("key%08d", i)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("value-%08d-", i); got[:len(want)] != want {
			t.Fatalf("k=%d: v=%q", i, got)
		}
	}
	s := v.Stats()
	fetched := s.Fetched - before.Fetched
	pct := 100 * float64(fetched) / float64(total)
	t.Logf("rows=%d pages=%d (%.1f MiB); 100 point queries on a cold replica fetched %d pages (%.2f%% of the database) in %d round trips (prefetched %d, hits %d); a whole-file download moves %d pages",
		rows, total, float64(total)*volume.PageSize/(1<<20), fetched, pct, s.RoundTrips-before.RoundTrips, s.Prefetched-before.Prefetched, s.PrefetchHits-before.PrefetchHits, total)
	if fetched == 0 || fetched >= uint64(total)/4 {
		t.Fatalf("fetched %d of %d pages: want some, and far fewer than the whole database", fetched, total)
	}
}
