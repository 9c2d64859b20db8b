package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/graft-cluster/graft/client"
	graftsqlite "github.com/graft-cluster/graft/sqlite"
	"github.com/graft-cluster/graft/volume"
)

// ExitBusySnapshot is graft sql's exit status when a transaction lost to
// another commit (SQLITE_BUSY_SNAPSHOT): nothing was applied; run it again.
const ExitBusySnapshot = 75 // EX_TEMPFAIL

// defaultReplicaDir is where graft sql keeps replicas without --dir.
func defaultReplicaDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "graft", "replicas")
}

func runSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sql", "sql [--dir DIR] [--endpoint URL] [--ca FILE] [--token T] [--json] VID [SQL ...]\n\n"+
		"Pulls the volume's replica in DIR, then runs the SQL arguments (or stdin) on it.\n"+
		"Rows print tab-separated under a header, or as JSON lines with --json.\n"+
		"Exit status: 0 ok; "+strconv.Itoa(ExitBusySnapshot)+" a transaction lost to another commit (retry); 1 any other error", stderr)
	var (
		dir, endpoints, syncMode, caFile, token string
		asJSON                                  bool
		timeout                                 time.Duration
	)
	fs.StringVar(&dir, "dir", defaultReplicaDir(), "replica directory (the local store of every volume's replica)")
	fs.StringVar(&endpoints, "endpoint", defaultEndpoint("http://127.0.0.1:7001"), "cluster endpoint(s), comma-separated; $"+EndpointEnv+" sets the default")
	fs.StringVar(&caFile, "ca", "", "PEM CA bundle to verify https:// endpoints with (default: the system roots)")
	fs.StringVar(&token, "token", "", "bearer token (graft token issue); default $"+TokenEnv)
	fs.BoolVar(&asJSON, "json", false, "print rows as JSON lines")
	fs.StringVar(&syncMode, "sync", "remote", "remote: a COMMIT returns once the cluster acknowledged it; local: commit locally, push in the background")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "bound on one page fetch, commit or push")
	var vidArg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		vidArg, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	rest := fs.Args()
	if vidArg == "" {
		if len(rest) == 0 {
			fs.Usage()
			return fmt.Errorf("missing volume ID")
		}
		vidArg, rest = rest[0], rest[1:]
	}
	vid, err := volume.ParseID(vidArg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("replica dir: %w", err)
	}
	q := url.Values{
		"vfs":             {graftsqlite.VFSName},
		"graft_dir":       {dir},
		"graft_endpoints": {endpoints},
		"graft_sync":      {syncMode},
		"graft_timeout":   {timeout.String()},
	}
	// A CA or a token cannot go into the DSN (a token in a DSN ends up in
	// logs): open the replica runtime here with them and hand it to the
	// VFS by name.
	sec, err := clientSecurity(caFile, or(token, os.Getenv(TokenEnv)))
	if err != nil {
		return err
	}
	if len(sec) > 0 {
		cfg := client.DefaultConfig()
		cfg.Dir, cfg.Options = dir, sec
		for _, e := range strings.Split(endpoints, ",") {
			if e = strings.TrimSpace(e); e != "" {
				cfg.Endpoints = append(cfg.Endpoints, e)
			}
		}
		rt, err := client.Open(ctx, cfg)
		if err != nil {
			return fmt.Errorf("open replica %s: %w", dir, err)
		}
		defer rt.Close()
		name := fmt.Sprintf("graft-sql-%d", os.Getpid())
		graftsqlite.RegisterRuntime(name, rt)
		q.Del("graft_dir")
		q.Del("graft_endpoints")
		q.Set("graft_runtime", name)
	}
	conn, err := sqlite3.Open("file:" + vid.String() + "?" + q.Encode())
	if err != nil {
		return sqlExit(fmt.Errorf("open %s: %w", vid, err))
	}
	defer conn.Close()
	if err := conn.BusyTimeout(timeout); err != nil {
		return err
	}
	if err := conn.Exec("PRAGMA graft_pull"); err != nil {
		if syncMode != "local" {
			return sqlExit(fmt.Errorf("pull %s: %w", vid, err))
		}
		fmt.Fprintf(stderr, "graft sql: pull %s failed, using the local replica: %v\n", vid, err)
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	run := func(src string) error { return runStatements(ctx, conn, src, out, asJSON) }
	if len(rest) == 0 {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		return sqlExit(run(string(b)))
	}
	for _, s := range rest {
		if err := run(s); err != nil {
			return sqlExit(err)
		}
	}
	return nil
}

// sqlExit gives a lost transaction its own exit status.
func sqlExit(err error) error {
	if graftsqlite.IsBusySnapshot(err) {
		return codedError{code: ExitBusySnapshot, err: fmt.Errorf("%w (the transaction lost to another commit and was not applied; run it again)", err)}
	}
	return err
}

// runStatements runs every statement of src in order; the first error
// stops, naming the statement.
func runStatements(ctx context.Context, conn *sqlite3.Conn, src string, out *bufio.Writer, asJSON bool) error {
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		stmt, tail, err := conn.Prepare(src)
		if err != nil {
			return fmt.Errorf("statement %d (%s): %w", n, snippet(src), err)
		}
		if stmt == nil {
			return nil // only whitespace or comments left
		}
		err = printRows(stmt, out, asJSON)
		text := stmt.SQL()
		stmt.Close()
		if err != nil {
			return fmt.Errorf("statement %d (%s): %w", n, snippet(text), err)
		}
		src = tail
	}
}

func printRows(stmt *sqlite3.Stmt, out *bufio.Writer, asJSON bool) error {
	cols := stmt.ColumnCount()
	names := make([]string, cols)
	for i := range names {
		names[i] = stmt.ColumnName(i)
	}
	if cols > 0 && !asJSON {
		out.WriteString(strings.Join(names, "\t") + "\n")
	}
	for stmt.Step() {
		if asJSON {
			row := make(map[string]any, cols)
			for i, name := range names {
				row[name] = columnValue(stmt, i)
			}
			b, err := json.Marshal(row)
			if err != nil {
				return err
			}
			out.Write(append(b, '\n'))
			continue
		}
		for i := range cols {
			if i > 0 {
				out.WriteByte('\t')
			}
			switch v := columnValue(stmt, i).(type) {
			case nil:
			case []byte:
				out.Write(v)
			default:
				fmt.Fprint(out, v)
			}
		}
		out.WriteByte('\n')
	}
	return stmt.Err()
}

func columnValue(stmt *sqlite3.Stmt, i int) any {
	switch stmt.ColumnType(i) {
	case sqlite3.INTEGER:
		return stmt.ColumnInt64(i)
	case sqlite3.FLOAT:
		return stmt.ColumnFloat(i)
	case sqlite3.NULL:
		return nil
	case sqlite3.BLOB:
		return stmt.ColumnRawBlob(i) // JSON: base64; text: as bytes
	}
	return stmt.ColumnText(i)
}

// snippet is a statement's first 80 characters on one line.
func snippet(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
