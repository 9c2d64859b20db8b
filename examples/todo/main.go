// Command todo is a shared todo list in a SQLite database stored in a graft
// volume: every process keeps its own lazy replica (--dir) and commits
// each change as one transaction the cluster orders; a change that loses to
// another replica's is retried on the new state.
//
//	todo --dir DIR --endpoint URL VID add TITLE...
//	todo --dir DIR --endpoint URL VID done ID
//	todo --dir DIR --endpoint URL VID list
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/graft-cluster/graft/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "todo:", err)
		os.Exit(1)
	}
}

const schema = `CREATE TABLE IF NOT EXISTS todo (
	id    INTEGER PRIMARY KEY,
	title TEXT NOT NULL,
	done  INTEGER NOT NULL DEFAULT 0
)`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("todo", flag.ContinueOnError)
	dir := fs.String("dir", "", "this process's replica directory (required)")
	endpoint := fs.String("endpoint", "http://127.0.0.1:7001", "cluster endpoint(s), comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if *dir == "" || len(rest) < 2 {
		return errors.New("usage: todo --dir DIR [--endpoint URL] VID add TITLE... | done ID | list")
	}
	vid, cmd, rest := rest[0], rest[1], rest[2:]
	q := url.Values{"vfs": {"graft"}, "graft_dir": {*dir}, "graft_endpoints": {*endpoint}, "_pragma": {"busy_timeout(5000)"}}
	db, err := sql.Open("sqlite3", "file:"+vid+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	// Catch up with the other replicas (only page versions move; pages are
	// fetched when a query reads them).
	if _, err := db.ExecContext(ctx, "PRAGMA graft_pull"); err != nil {
		return err
	}
	if err := retry(ctx, db, func(tx *sql.Tx) error { _, err := tx.Exec(schema); return err }); err != nil {
		return err
	}
	switch cmd {
	case "add":
		title := strings.Join(rest, " ")
		if title == "" {
			return errors.New("add: empty title")
		}
		return retry(ctx, db, func(tx *sql.Tx) error {
			_, err := tx.Exec("INSERT INTO todo (title) VALUES (?)", title)
			return err
		})
	case "done":
		if len(rest) != 1 {
			return errors.New("done: want one ID")
		}
		id, err := strconv.Atoi(rest[0])
		if err != nil {
			return fmt.Errorf("done: %w", err)
		}
		return retry(ctx, db, func(tx *sql.Tx) error {
			res, err := tx.Exec("UPDATE todo SET done = 1 WHERE id = ?", id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("done: no todo %d", id)
			}
			return nil
		})
	case "list":
		rows, err := db.QueryContext(ctx, "SELECT id, title, done FROM todo ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, done int
			var title string
			if err := rows.Scan(&id, &title, &done); err != nil {
				return err
			}
			mark := " "
			if done != 0 {
				mark = "x"
			}
			fmt.Fprintf(stdout, "%d [%s] %s\n", id, mark, title)
		}
		return rows.Err()
	}
	return fmt.Errorf("unknown command %q (add, done, list)", cmd)
}

// retry runs change in a transaction until it commits. A transaction that
// lost to another replica's commit answers SQLITE_BUSY_SNAPSHOT; the replica
// has already moved to the winner's state, so running it again is safe.
func retry(ctx context.Context, db *sql.DB, change func(*sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			if err = change(tx); err == nil {
				err = tx.Commit()
			} else {
				tx.Rollback()
			}
		}
		if err == nil || !sqlite.IsBusySnapshot(err) || attempt == 10 {
			return err
		}
	}
}
