package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/graft-cluster/graft/volume"
)

var fakeSeq atomic.Int64

// sharedOf returns the process-wide state of vid opened through runtime.
func sharedOf(t *testing.T, runtime string, vid volume.ID) *shared {
	t.Helper()
	registry.mu.Lock()
	defer registry.mu.Unlock()
	s := registry.vols[volKey{src: "runtime:" + runtime, vid: vid}]
	if s == nil {
		t.Fatalf("%s is not open through %s", vid, runtime)
	}
	return s
}

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
	db := openDB(t, a, vid, "&graft_max_pages=0")
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

func TestVFS_PageSizeOtherThan4096IsRefused(t *testing.T) {
	a, _ := fakeReplica(t, newFakeCluster())
	db := openDB(t, a, volume.MustNewID(), "")
	_, err := db.Exec("PRAGMA page_size = 8192")
	if err == nil || !strings.Contains(err.Error(), "page_size must be 4096") {
		t.Fatalf("PRAGMA page_size = 8192: err = %v, want the page size error", err)
	}
	exec(t, db, "PRAGMA page_size = 4096", "CREATE TABLE t (x)")
	if n := queryInt(t, db, "PRAGMA page_size"); n != 4096 {
		t.Fatalf("page_size = %d", n)
	}
}

func TestVFS_WALIsRefused(t *testing.T) {
	a, _ := fakeReplica(t, newFakeCluster())
	db := openDB(t, a, volume.MustNewID(), "")
	exec(t, db, "CREATE TABLE t (x)")
	for _, mode := range []string{"WAL", "wal", "off"} {
		_, err := db.Exec("PRAGMA journal_mode = " + mode)
		if err == nil || !strings.Contains(err.Error(), "not supported") {
			t.Fatalf("journal_mode=%s: err = %v, want a refusal that says why", mode, err)
		}
	}
	if got := queryString(t, db, "PRAGMA journal_mode"); got != "memory" {
		t.Fatalf("journal_mode = %q, want memory", got)
	}
	// A DSN asking for WAL fails the same way.
	_, err := openDB(t, a, volume.MustNewID(), "&_pragma=journal_mode(wal)").Exec("CREATE TABLE t (x)")
	if err == nil || !strings.Contains(err.Error(), "journal_mode=WAL is not supported") {
		t.Fatalf("DSN journal_mode(wal): err = %v", err)
	}
}

func TestVFS_NotADatabaseFailsOnOpenWritesNothing(t *testing.T) {
	cl := newFakeCluster()
	a, src := fakeReplica(t, cl)
	vid := volume.MustNewID()
	v := src.vol(vid)
	w := v.Writer()
	junk := []byte(strings.Repeat("not a database! ", pageSize/16))
	if err := w.WritePage(1, junk); err != nil {
		t.Fatal(err)
	}
	w.SetPageCount(1)
	if _, err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := v.Snapshot()
	db := openDB(t, a, vid, "")
	_, err := db.Exec("CREATE TABLE t (x)")
	if !errors.Is(err, ErrNotDatabase) || !errors.Is(err, sqlite3.CANTOPEN) {
		t.Fatalf("open a junk volume: err = %v, want CANTOPEN with ErrNotDatabase", err)
	}
	if after := v.Snapshot(); after != before {
		t.Fatalf("snapshot moved from %v to %v", before, after)
	}

	// A SQLite header with another page size is refused the same way.
	vid2 := volume.MustNewID()
	w = src.vol(vid2).Writer()
	hdr := make([]byte, pageSize)
	copy(hdr, sqliteMagic)
	hdr[hdrPageSize], hdr[hdrPageSize+1] = 0x20, 0x00 // 8192
	w.WritePage(1, hdr)
	w.SetPageCount(1)
	if _, err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err = openDB(t, a, vid2, "").Exec("SELECT 1 FROM sqlite_master")
	if !errors.Is(err, ErrPageSize) {
		t.Fatalf("open an 8192-page database: err = %v, want ErrPageSize", err)
	}
}

func TestVFS_BadDSN(t *testing.T) {
	a, _ := fakeReplica(t, newFakeCluster())
	for _, dsn := range []string{
		"file:not-a-vid?vfs=graft&graft_runtime=" + a,
		fmt.Sprintf("file:%s?vfs=graft", volume.MustNewID()),
		fmt.Sprintf("file:%s?vfs=graft&graft_runtime=nosuch", volume.MustNewID()),
		fmt.Sprintf("file:%s?vfs=graft&graft_runtime=%s&graft_sync=sometimes", volume.MustNewID(), a),
	} {
		db, err := sql.Open("sqlite3", dsn)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Exec("SELECT 1")
		db.Close()
		if !errors.Is(err, ErrBadDSN) {
			t.Errorf("%s: err = %v, want ErrBadDSN", dsn, err)
		}
	}
}

func TestVFS_ShrinkAndVacuum(t *testing.T) {
	a, src := fakeReplica(t, newFakeCluster())
	vid := volume.MustNewID()
	db := openDB(t, a, vid, "&graft_max_pages=0") // the fake cluster has no commit limit
	exec(t, db, "CREATE TABLE big (x)", "CREATE TABLE small (x)", "INSERT INTO small VALUES (1)")
	exec(t, db, "INSERT INTO big SELECT randomblob(1000) FROM generate_series(1, 2000)")
	grown := src.vol(vid).Snapshot().PageCount
	exec(t, db, "DROP TABLE big")
	before := src.vol(vid).Snapshot().LocalLSN
	exec(t, db, "VACUUM")
	s := src.vol(vid).Snapshot()
	if s.LocalLSN != before+1 {
		t.Fatalf("VACUUM made %d local commits, want 1", s.LocalLSN-before)
	}
	if s.PageCount >= grown/10 {
		t.Fatalf("page count %d after VACUUM, was %d", s.PageCount, grown)
	}
	if n := queryInt(t, db, "PRAGMA page_count"); uint32(n) != s.PageCount {
		t.Fatalf("PRAGMA page_count = %d, volume has %d", n, s.PageCount)
	}
	integrityOK(t, db)
	if n := queryInt(t, db, "SELECT x FROM small"); n != 1 {
		t.Fatalf("small.x = %d", n)
	}
}

func TestVFS_SynchronousOffCommitsInPhaseTwo(t *testing.T) {
	cl := newFakeCluster()
	a, src := fakeReplica(t, cl)
	b, _ := fakeReplica(t, cl)
	vid := volume.MustNewID()
	db := openDB(t, a, vid, "&_pragma=synchronous(off)")
	exec(t, db, "CREATE TABLE t (x)")
	before := src.vol(vid).Snapshot().LocalLSN
	exec(t, db, "INSERT INTO t SELECT value FROM generate_series(1, 500)")
	if got := src.vol(vid).Snapshot().LocalLSN - before; got != 1 {
		t.Fatalf("%d local commits, want 1", got)
	}
	integrityOK(t, db)
	dbB := openDB(t, b, vid, "&_pragma=synchronous(off)")
	queryString(t, dbB, "PRAGMA graft_pull")
	exec(t, db, "INSERT INTO t VALUES (0)")
	if _, err := dbB.Exec("INSERT INTO t VALUES (-1)"); !errors.Is(err, sqlite3.BUSY_SNAPSHOT) {
		t.Fatalf("rejected commit without batch atomic write: err = %v, want SQLITE_BUSY_SNAPSHOT", err)
	}
	exec(t, dbB, "INSERT INTO t VALUES (-1)")
	if n := queryInt(t, dbB, "SELECT count(*) FROM t"); n != 502 {
		t.Fatalf("B count = %d, want 502", n)
	}
	integrityOK(t, dbB)
}

func TestVFS_LocalSyncCommitsOffline(t *testing.T) {
	cl := newFakeCluster()
	a, src := fakeReplica(t, cl)
	vid := volume.MustNewID()
	v := src.vol(vid)
	v.pushErr = errors.New("fake: cluster unreachable")
	db := openDB(t, a, vid, "&graft_sync=local")
	exec(t, db, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
	if n := queryInt(t, db, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("count = %d", n)
	}
	if s := v.Snapshot(); s.LocalLSN != 2 || s.RemoteLSN != 0 {
		t.Fatalf("offline local commits: %v, want local 2 remote 0", s)
	}
	v.mu.Lock()
	v.pushErr = nil
	v.mu.Unlock()
	if got := queryString(t, db, "PRAGMA graft_push"); !strings.Contains(got, "remote=1") {
		t.Fatalf("graft_push = %q", got)
	}
}

func TestVFS_ConnectionsSeeEachOthersCommits(t *testing.T) {
	a, _ := fakeReplica(t, newFakeCluster())
	vid := volume.MustNewID()
	db1, db2 := openDB(t, a, vid, ""), openDB(t, a, vid, "")
	db1.SetMaxOpenConns(1)
	db2.SetMaxOpenConns(1)
	exec(t, db1, "CREATE TABLE t (x)")
	for i := range 20 {
		w, r := db1, db2
		if i%3 == 0 {
			w, r = db2, db1
		}
		exec(t, w, fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
		if n := queryInt(t, r, "SELECT count(*) FROM t"); n != i+1 {
			t.Fatalf("round %d: the other connection counts %d rows, want %d", i, n, i+1)
		}
		if n := queryInt(t, w, "SELECT count(*) FROM t"); n != i+1 {
			t.Fatalf("round %d: the writer counts %d rows, want %d", i, n, i+1)
		}
	}
	integrityOK(t, db1)
}

// A read transaction that starts while a graft_sync=remote commit is being
// pushed waits for the outcome: it never reads a commit the cluster then
// rejects.
func TestVFS_RemoteCommitInFlightIsNotRead(t *testing.T) {
	cl := newFakeCluster()
	vid := volume.MustNewID()
	a, srcA := fakeReplica(t, cl)
	b, _ := fakeReplica(t, cl)
	writer, reader := openDB(t, a, vid, ""), openDB(t, a, vid, "")
	dbB := openDB(t, b, vid, "")
	exec(t, writer, "CREATE TABLE t (who TEXT)")
	queryString(t, dbB, "PRAGMA graft_pull")
	exec(t, dbB, "INSERT INTO t VALUES ('b')") // A is now stale: its next commit is rejected

	entered, release := make(chan struct{}), make(chan struct{})
	v := srcA.vol(vid)
	v.mu.Lock()
	v.pushHook = func() {
		v.mu.Lock()
		v.pushHook = nil
		v.mu.Unlock()
		close(entered)
		<-release
	}
	v.mu.Unlock()
	werr := make(chan error, 1)
	go func() {
		_, err := writer.Exec("INSERT INTO t VALUES ('a')")
		werr <- err
	}()
	<-entered // A's local commit is made; its push is held
	got := make(chan string, 1)
	go func() {
		var s string
		if err := reader.QueryRow("SELECT group_concat(who) FROM t").Scan(&s); err != nil {
			s = "error: " + err.Error()
		}
		got <- s
	}()
	sh := sharedOf(t, a, vid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sh.mu.Lock()
		n := sh.waiting
		sh.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("the read did not wait for the push in flight (it saw %q)", <-got)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-werr; !errors.Is(err, sqlite3.BUSY_SNAPSHOT) {
		t.Fatalf("A's stale insert: err = %v, want SQLITE_BUSY_SNAPSHOT", err)
	}
	if s := <-got; s != "b" {
		t.Fatalf("a read started during the push saw %q, want b (never the rejected a)", s)
	}
}
