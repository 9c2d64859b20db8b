package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/graft-cluster/graft/volume"
)

var fakeSeq atomic.Int64

// fakeReplica registers a fake runtime over cl and returns its name.
func fakeReplica(t *testing.T, cl *fakeCluster) (string, *fakeSource) {
	t.Helper()
	name := fmt.Sprintf("fake%d", fakeSeq.Add(1))
	src := newFakeSource(cl)
	registerSource(name, src)
	t.Cleanup(func() { unregisterSource(name) })
	return name, src
}

func openDB(t *testing.T, runtime string, vid volume.ID, extra string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("file:%s?vfs=graft&graft_runtime=%s&_pragma=busy_timeout(10000)%s", vid, runtime, extra)
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func queryInt(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s string
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func integrityOK(t *testing.T, db *sql.DB) {
	t.Helper()
	if got := queryString(t, db, "PRAGMA integrity_check"); got != "ok" {
		t.Fatalf("integrity_check: %s", got)
	}
}

func TestVFS_SchemaOnAQueriesOnB(t *testing.T) {
	cl := newFakeCluster()
	vid := volume.MustNewID()
	a, _ := fakeReplica(t, cl)
	b, _ := fakeReplica(t, cl)
	dbA := openDB(t, a, vid, "")
	exec(t, dbA, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)", "CREATE INDEX kv_v ON kv(v)")
	for i := range 200 {
		exec(t, dbA, fmt.Sprintf("INSERT INTO kv VALUES (%d, '%s')", i, strings.Repeat("x", i)))
	}
	integrityOK(t, dbA)

	dbB := openDB(t, b, vid, "")
	if got := queryString(t, dbB, "PRAGMA graft_pull"); !strings.Contains(got, "remote=202") {
		t.Fatalf("graft_pull = %q, want remote=202 (2 schema statements + 200 inserts, one commit each)", got)
	}
	if n := queryInt(t, dbB, "SELECT count(*) FROM kv WHERE length(v) >= 100"); n != 100 {
		t.Fatalf("B sees %d rows with length >= 100, want 100", n)
	}
	integrityOK(t, dbB)
}

func TestVFS_OneTransactionOneCommit(t *testing.T) {
	cl := newFakeCluster()
	vid := volume.MustNewID()
	a, src := fakeReplica(t, cl)
	db := openDB(t, a, vid, "")
	exec(t, db, "CREATE TABLE t (x)")
	v := src.vol(vid)
	before := v.Snapshot().LocalLSN
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := tx.Exec("INSERT INTO t VALUES (?)", strings.Repeat("y", i%500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := v.Snapshot().LocalLSN - before; got != 1 {
		t.Fatalf("a 2000-row transaction made %d local commits, want 1", got)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM t"); n != 2000 {
		t.Fatalf("count = %d", n)
	}
	integrityOK(t, db)
}

func TestVFS_RejectedCommitIsBusySnapshotAndRetrySucceeds(t *testing.T) {
	cl := newFakeCluster()
	vid := volume.MustNewID()
	a, _ := fakeReplica(t, cl)
	b, _ := fakeReplica(t, cl)
	dbA := openDB(t, a, vid, "")
	dbB := openDB(t, b, vid, "")
	exec(t, dbA, "CREATE TABLE t (who TEXT)")
	queryString(t, dbB, "PRAGMA graft_pull")
	exec(t, dbA, "INSERT INTO t VALUES ('a')") // B is now stale

	_, err := dbB.Exec("INSERT INTO t VALUES ('b')")
	if !errors.Is(err, sqlite3.BUSY_SNAPSHOT) {
		t.Fatalf("stale insert on B: err = %v, want SQLITE_BUSY_SNAPSHOT", err)
	}
	if !IsBusySnapshot(err) {
		t.Fatalf("IsBusySnapshot(%v) = false", err)
	}
	exec(t, dbB, "INSERT INTO t VALUES ('b')") // retry
	if got := queryString(t, dbB, "SELECT group_concat(who, ',') FROM (SELECT who FROM t ORDER BY who)"); got != "a,b" {
		t.Fatalf("B sees %q, want a,b", got)
	}
	integrityOK(t, dbB)
	queryString(t, dbA, "PRAGMA graft_pull")
	if got := queryString(t, dbA, "SELECT group_concat(who, ',') FROM (SELECT who FROM t ORDER BY who)"); got != "a,b" {
		t.Fatalf("A sees %q after pull, want a,b", got)
	}
}

func TestVFS_StaleSnapshotInProcess(t *testing.T) {
	cl := newFakeCluster()
	vid := volume.MustNewID()
	a, _ := fakeReplica(t, cl)
	db := openDB(t, a, vid, "&_txlock=deferred")
	exec(t, db, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")

	reader, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback()
	var n int
	if err := reader.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
	exec(t, db, "INSERT INTO t VALUES (2)") // another connection commits
	if err := reader.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("pinned snapshot: count = %d, %v; want 1", n, err)
	}
	_, err = reader.Exec("INSERT INTO t VALUES (3)")
	if !errors.Is(err, sqlite3.BUSY_SNAPSHOT) {
		t.Fatalf("write on a stale snapshot: err = %v, want SQLITE_BUSY_SNAPSHOT", err)
	}
	reader.Rollback()
	if n := queryInt(t, db, "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
}
