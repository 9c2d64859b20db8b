package main_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/graft-cluster/graft/cluster/clustertest"
	_ "github.com/graft-cluster/graft/sqlite"
	"github.com/graft-cluster/graft/volume"
)

// TestProcesses_SQL runs graft sql as processes: statements from arguments
// and from stdin, on two replicas, and a process killed in the middle of a
// big transaction: its replica then holds the whole transaction or none.
func TestProcesses_SQL(t *testing.T) {
	c := clustertest.Start(t, 3)
	ep := strings.Join(c.Endpoints(), ",")
	vid := volume.MustNewID().String()
	dirA, dirB := t.TempDir(), t.TempDir()
	graftSQL := func(dir, stdin string, args ...string) (string, error) {
		cmd := exec.Command(graftBin, append([]string{"sql", vid, "--dir", dir, "--endpoint", ep}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, errb.String())
		}
		return out.String(), err
	}
	if _, err := graftSQL(dirA, "CREATE TABLE n (x INTEGER);\nINSERT INTO n VALUES (1), (2);\n-- done\n"); err != nil {
		t.Fatal(err)
	}
	out, err := graftSQL(dirB, "", "SELECT sum(x) AS s FROM n")
	if err != nil || out != "s\n3\n" {
		t.Fatalf("replica B: %q, %v", out, err)
	}
	_, err = graftSQL(dirB, "", "SELECT * FROM nosuch")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(err.Error(), "statement 1 (SELECT * FROM nosuch)") {
		t.Fatalf("bad statement: %v, want exit status 1 naming the statement", err)
	}

	// Kill a process while it runs one big local transaction, at a random
	// moment (round 0 runs to the end and times it; the others are killed
	// somewhere in 0..1.5x that); the replica then has all of its rows or
	// none.
	const rows = 300_000
	dirK := t.TempDir()
	full := time.Duration(0)
	for round := range 4 {
		cmd := exec.Command(graftBin, "sql", vid, "--dir", dirK, "--endpoint", ep, "--sync", "local",
			fmt.Sprintf("BEGIN; INSERT INTO n SELECT value FROM generate_series(1, %d); COMMIT", rows))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		delay := time.Duration(rand.Int64N(int64(full)*3/2 + 1))
		if round > 0 {
			killer := time.AfterFunc(delay, func() { cmd.Process.Kill() })
			defer killer.Stop()
		}
		err := cmd.Wait()
		if round == 0 {
			if err != nil {
				t.Fatalf("unkilled run: %v", err)
			}
			full = time.Since(start)
		}
		db, oerr := sql.Open("sqlite3", fmt.Sprintf("file:%s?vfs=graft&graft_dir=%s&graft_endpoints=%s&graft_sync=local", vid, dirK, ep))
		if oerr != nil {
			t.Fatal(oerr)
		}
		var n int
		if err := db.QueryRow("SELECT count(*) FROM n").Scan(&n); err != nil {
			t.Fatal(err)
		}
		var ok string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("integrity_check after a kill: %q, %v", ok, err)
		}
		db.Close()
		t.Logf("round %d: kill at %v (0: none; process: %v); replica has %d rows", round, delay, err, n)
		if (n-2)%rows != 0 {
			t.Fatalf("round %d: %d rows: a transaction of %d rows is partly there", round, n, rows)
		}
	}
}
