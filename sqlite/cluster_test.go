package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func patientRaft(_ int, c *cluster.Config) {
	c.Raft.HeartbeatTimeout = time.Second
	c.Raft.ElectionTimeout = time.Second
	c.Raft.LeaderLeaseTimeout = 500 * time.Millisecond
}

// registerRuntime opens a durable replica runtime on endpoints and registers it.
func registerRuntime(t testing.TB, endpoints []string, opts ...client.Option) (string, *client.Runtime) {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Dir, cfg.Endpoints, cfg.Options = t.TempDir(), endpoints, opts
	rt, err := client.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("rt%d", fakeSeq.Add(1))
	RegisterRuntime(name, rt)
	t.Cleanup(func() {
		UnregisterRuntime(name)
		rt.Close()
	})
	return name, rt
}

func TestVFS_Cluster_ReplicaAWritesReplicaBReads(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	vid := volume.MustNewID()
	a, _ := registerRuntime(t, c.Endpoints())
	dbA := openDB(t, a, vid, "")
	exec(t, dbA,
		"CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL CHECK (balance >= 0))",
		"CREATE INDEX accounts_owner ON accounts(owner)")
	tx, err := dbA.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if _, err := tx.Exec("INSERT INTO accounts (owner, balance) VALUES (?, ?)", fmt.Sprintf("user%03d", i), 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	integrityOK(t, dbA)

	// Replica B is a separate durable replica opened from the DSN alone.
	dsnB := fmt.Sprintf("file:%s?vfs=graft&graft_dir=%s&graft_endpoints=%s&_pragma=busy_timeout(10000)",
		vid, t.TempDir(), strings.Join(c.Endpoints(), ","))
	dbB, err := sql.Open("sqlite3", dsnB)
	if err != nil {
		t.Fatal(err)
	}
	defer dbB.Close()
	if got := queryString(t, dbB, "PRAGMA graft_pull"); !strings.Contains(got, "remote=3") {
		t.Fatalf("graft_pull on B = %q, want remote=3 (two schema commits, one insert transaction)", got)
	}
	if n := queryInt(t, dbB, "SELECT sum(balance) FROM accounts"); n != 500*100 {
		t.Fatalf("B: sum(balance) = %d, want %d", n, 500*100)
	}
	if got := queryString(t, dbB, "SELECT owner FROM accounts WHERE owner = 'user250'"); got != "user250" {
		t.Fatalf("B: indexed lookup = %q", got)
	}
	integrityOK(t, dbB)
	if got := queryString(t, dbB, "PRAGMA graft_status"); got != "ok" {
		t.Fatalf("graft_status = %q", got)
	}
	pages := queryString(t, dbB, "PRAGMA graft_pages")
	t.Logf("B after queries: %s", pages)
}

func TestVFS_Cluster_RejectedTransactionIsBusySnapshotRetrySucceeds(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	vid := volume.MustNewID()
	a, _ := registerRuntime(t, c.Endpoints())
	b, rtB := registerRuntime(t, c.Endpoints())
	dbA := openDB(t, a, vid, "")
	dbB := openDB(t, b, vid, "")
	exec(t, dbA, "CREATE TABLE ledger (id INTEGER PRIMARY KEY, who TEXT)")
	queryString(t, dbB, "PRAGMA graft_pull")
	exec(t, dbA, "INSERT INTO ledger (who) VALUES ('a')") // B is now stale

	_, err := dbB.Exec("INSERT INTO ledger (who) VALUES ('b')")
	if !errors.Is(err, sqlite3.BUSY_SNAPSHOT) || errors.Is(err, sqlite3.IOERR) {
		t.Fatalf("stale transaction on B: err = %v, want SQLITE_BUSY_SNAPSHOT", err)
	}
	v, err := rtB.Volume(context.Background(), vid)
	if err != nil {
		t.Fatal(err)
	}
	if st := v.Status(); st != client.StatusOk {
		t.Fatalf("after the rejection B's volume is %s, want ok (reset)", st)
	}
	exec(t, dbB, "INSERT INTO ledger (who) VALUES ('b')") // the retry
	queryString(t, dbA, "PRAGMA graft_pull")
	for name, db := range map[string]*sql.DB{"A": dbA, "B": dbB} {
		if got := queryString(t, db, "SELECT group_concat(who, ',') FROM (SELECT who FROM ledger ORDER BY id)"); got != "a,b" {
			t.Fatalf("%s sees %q, want a,b", name, got)
		}
		integrityOK(t, db)
	}
}

func TestVFS_Cluster_UnreachableFailsClearly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	name, rt := registerRuntime(t, []string{dead}, client.WithAttempts(1), client.WithBackoff(time.Millisecond))
	vid := volume.MustNewID()
	db := openDB(t, name, vid, "&graft_timeout=5s")
	_, err = db.Exec("CREATE TABLE t (x)")
	if err == nil {
		t.Fatal("CREATE TABLE with the cluster unreachable succeeded")
	}
	if !errors.Is(err, ErrPush) || !strings.Contains(err.Error(), "push") {
		t.Fatalf("err = %v, want one wrapping ErrPush", err)
	}
	t.Logf("error: %v", err)
	v, err := rt.Volume(context.Background(), vid)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing half-applied: the transaction is one local commit (kept, of
	// unknown outcome, resent by the next push) or none.
	if s := v.Snapshot(); s.LocalLSN > 1 {
		t.Fatalf("snapshot %+v: more than one local commit for one transaction", s)
	}
	integrityOK(t, db)
}

func TestVFS_Cluster_TooLargeTransactionFailsWholeReplicaStaysUsable(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	vid := volume.MustNewID()
	a, rt := registerRuntime(t, c.Endpoints())
	db := openDB(t, a, vid, "")
	exec(t, db, "CREATE TABLE t (x)")
	_, err := db.Exec("INSERT INTO t SELECT randomblob(3000) FROM generate_series(1, 400)") // ~400 pages
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a 400-page transaction: err = %v, want ErrTooLarge", err)
	}
	v, err := rt.Volume(context.Background(), vid)
	if err != nil {
		t.Fatal(err)
	}
	if s := v.Snapshot(); s.LocalLSN != 1 || v.Status() != client.StatusOk {
		t.Fatalf("after the refused transaction: %+v %s, want local LSN 1 (the CREATE) and ok", s, v.Status())
	}
	exec(t, db, "INSERT INTO t SELECT randomblob(3000) FROM generate_series(1, 100)")
	if n := queryInt(t, db, "SELECT count(*) FROM t"); n != 100 {
		t.Fatalf("count = %d, want 100", n)
	}
	integrityOK(t, db)
}

func TestVFS_Cluster_Pragmas(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	vid := volume.MustNewID()
	a, _ := registerRuntime(t, c.Endpoints())
	db := openDB(t, a, vid, "&graft_sync=local")
	db.SetMaxOpenConns(1)
	exec(t, db, "CREATE TABLE t (x)", "INSERT INTO t VALUES (42)")
	if got := queryString(t, db, "PRAGMA graft_push"); !strings.Contains(got, "remote=") || !strings.Contains(got, vid.String()) {
		t.Fatalf("graft_push = %q", got)
	}
	if got := queryString(t, db, "PRAGMA graft_snapshot"); !strings.Contains(got, "local=2") {
		t.Fatalf("graft_snapshot = %q, want local=2", got)
	}
	if got := queryString(t, db, "PRAGMA graft_status"); got != "ok" {
		t.Fatalf("graft_status = %q", got)
	}
	if got := queryString(t, db, "PRAGMA graft_pages"); !strings.Contains(got, "pending=0") {
		t.Fatalf("graft_pages = %q", got)
	}
	before := queryString(t, db, "PRAGMA graft_snapshot")
	if got := queryString(t, db, "PRAGMA graft_reset"); got != before {
		t.Fatalf("graft_reset = %q, want %q (everything pushed: nothing to drop)", got, before)
	}
	if _, err := db.Exec("PRAGMA graft_nosuch"); !errors.Is(err, ErrUnknownPragma) && (err == nil || !strings.Contains(err.Error(), "unknown pragma")) {
		t.Fatalf("PRAGMA graft_nosuch: err = %v", err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("PRAGMA graft_pull"); err == nil || !strings.Contains(err.Error(), "write transaction") {
		t.Fatalf("graft_pull inside a write transaction: err = %v", err)
	}
	tx.Rollback()

	forked := queryString(t, db, "PRAGMA graft_fork")
	fvid, err := volume.ParseID(forked)
	if err != nil || fvid == vid {
		t.Fatalf("graft_fork = %q (%v), want a new volume ID", forked, err)
	}
	b, _ := registerRuntime(t, c.Endpoints())
	dbB := openDB(t, b, fvid, "")
	queryString(t, dbB, "PRAGMA graft_pull")
	if n := queryInt(t, dbB, "SELECT x FROM t"); n != 42 {
		t.Fatalf("fork read on B: x = %d, want 42", n)
	}
	integrityOK(t, dbB)
}

// Two replicas that make the same change on the same head make
// byte-identical pages, so the same commit hash: the cluster treats the
// second push as the first commit acknowledged again (a commit's hash is
// its identity) and one acknowledged transaction is lost. Found by the
// sqlite-bank consistency workload (two acknowledged transfers at one LSN).
// Either outcome is correct: the second COMMIT answers BUSY_SNAPSHOT, or
// both apply. Known bug, not fixed yet: runs with GRAFT_SQLITE_KNOWN_BUGS=1.
func TestVFS_Cluster_IdenticalTransactionsOnOneHeadBothCount(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	vid := volume.MustNewID()
	a, _ := registerRuntime(t, c.Endpoints())
	b, _ := registerRuntime(t, c.Endpoints())
	dbA := openDB(t, a, vid, "")
	dbB := openDB(t, b, vid, "")
	exec(t, dbA, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)", "INSERT INTO counter VALUES (1, 0)")
	queryString(t, dbB, "PRAGMA graft_pull") // both on one head
	exec(t, dbA, "UPDATE counter SET n = n + 1 WHERE id = 1")
	_, errB := dbB.Exec("UPDATE counter SET n = n + 1 WHERE id = 1")
	queryString(t, dbA, "PRAGMA graft_pull")
	n := queryInt(t, dbA, "SELECT n FROM counter WHERE id = 1")
	switch {
	case errB == nil && n != 2:
		t.Fatalf("both increments acknowledged, counter = %d, want 2", n)
	case errB != nil && !errors.Is(errB, sqlite3.BUSY_SNAPSHOT):
		t.Fatalf("second increment: %v, want nil or SQLITE_BUSY_SNAPSHOT", errB)
	case errB != nil && n != 1:
		t.Fatalf("one increment acknowledged, counter = %d, want 1", n)
	}
}
