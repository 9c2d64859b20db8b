package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func TestSQL_TwoReplicas(t *testing.T) {
	c := clustertest.Start(t, 3)
	ep := strings.Join(c.Endpoints(), ",")
	ctx := t.Context()
	vid := volume.MustNewID().String()
	dirA, dirB := t.TempDir(), t.TempDir()
	sqlRun := func(dir string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"sql", vid, "--dir", dir, "--endpoint", ep}, args...), &out, io.Discard)
		return out.String(), err
	}

	if _, err := sqlRun(dirA,
		"CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);"+
			"INSERT INTO todo (title) VALUES ('milk'), ('eggs');",
		"UPDATE todo SET done = 1 WHERE title = 'milk'"); err != nil {
		t.Fatal(err)
	}
	out, err := sqlRun(dirB, "SELECT id, title, done FROM todo ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if want := "id\ttitle\tdone\n1\tmilk\t1\n2\teggs\t0\n"; out != want {
		t.Fatalf("replica B printed %q, want %q", out, want)
	}
	out, err = sqlRun(dirB, "--json", "SELECT title, done, NULL AS note FROM todo WHERE id = 2")
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(out), &row); err != nil || row["title"] != "eggs" || row["done"] != float64(0) || row["note"] != nil {
		t.Fatalf("--json printed %q (%v)", out, err)
	}

	// An error names the statement and stops; what ran before it stays.
	_, err = sqlRun(dirB, "INSERT INTO todo (title) VALUES ('bread'); INSERT INTO nosuch VALUES (1); INSERT INTO todo (title) VALUES ('never')")
	if err == nil || !strings.Contains(err.Error(), "statement 2 (INSERT INTO nosuch VALUES (1)") {
		t.Fatalf("err = %v, want one naming statement 2", err)
	}
	out, err = sqlRun(dirA, "SELECT group_concat(title, ',') FROM todo")
	if err != nil || out != "group_concat(title, ',')\nmilk,eggs,bread\n" {
		t.Fatalf("A after pull: %q, %v", out, err)
	}
	if _, err := sqlRun(dirA, "PRAGMA integrity_check"); err != nil {
		t.Fatal(err)
	}

	// A bad volume ID and a non-database volume are errors.
	if err := run(ctx, []string{"sql", "nope", "--dir", dirA, "--endpoint", ep, "SELECT 1"}, io.Discard, io.Discard); err == nil {
		t.Fatal("graft sql with a bad volume ID succeeded")
	}
	junk := volume.MustNewID()
	if _, err := c.Client().Commit(ctx, junk, 0, 1, []volume.PageWrite{{Idx: 1, Data: bytes.Repeat([]byte("junk"), volume.PageSize/4)}}); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"sql", junk.String(), "--dir", dirA, "--endpoint", ep, "SELECT 1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "does not hold a SQLite database") {
		t.Fatalf("graft sql on a junk volume: err = %v", err)
	}
}

func TestSQL_LostTransactionExitStatus(t *testing.T) {
	c := clustertest.Start(t, 3)
	ep := strings.Join(c.Endpoints(), ",")
	vid := volume.MustNewID().String()
	open := func() *sql.DB {
		dsn := fmt.Sprintf("file:%s?vfs=graft&graft_dir=%s&graft_endpoints=%s", vid, t.TempDir(), ep)
		db, err := sql.Open("sqlite3", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec("PRAGMA graft_pull"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec("INSERT INTO t VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec("INSERT INTO t VALUES (1)"); err == nil {
		t.Fatal("a write on a stale replica succeeded")
	} else {
		var ce codedError
		if !errors.As(sqlExit(err), &ce) || ce.code != ExitBusySnapshot {
			t.Fatalf("sqlExit(%v) = %v, want exit status %d", err, sqlExit(err), ExitBusySnapshot)
		}
	}
	if err := sqlExit(context.Canceled); errors.As(err, new(codedError)) {
		t.Fatalf("sqlExit(other) = %v, want it unchanged", err)
	}
}
