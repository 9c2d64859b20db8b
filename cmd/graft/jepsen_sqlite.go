package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	graftsqlite "github.com/graft-cluster/graft/sqlite"
	"github.com/graft-cluster/graft/volume"
)

// sqlClientRequest is one operation of `graft jepsen-sqlite-client` (the
// sqlite-bank workload's client process; see jepsen/workload/sqlbank.go).
type sqlClientRequest struct {
	Op     string `json:"op"` // setup, transfer, read
	From   int64  `json:"from,omitempty"`
	To     int64  `json:"to,omitempty"`
	Amount int64  `json:"amount,omitempty"`
	// Txn, when not 0, is written to the debited row's txn column, so
	// that no two transfers make byte-identical pages. Two replicas that
	// run the same transfer on the same head otherwise send the same
	// commit, which the cluster acknowledges to both and applies once
	// (the hash is the commit's identity): one acknowledged transfer is
	// lost (found by this workload; see docs).
	Txn int64 `json:"txn,omitempty"`
}

// sqlClientReply is one answer line. A transfer that reaches COMMIT first
// writes a line with Prepared set (its base and whether the debit changed a
// row) and flushes it before it issues COMMIT; the final line has Type.
type sqlClientReply struct {
	Prepared bool    `json:"prepared,omitempty"`
	Type     string  `json:"type,omitempty"` // ok, fail (certainly not applied), info (unknown)
	Base     uint64  `json:"base,omitempty"` // remote LSN the transaction ran on
	LSN      uint64  `json:"lsn,omitempty"`  // remote LSN after the op (commit's LSN; read's snapshot)
	Debited  bool    `json:"debited,omitempty"`
	Values   []int64 `json:"values,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// runJepsenSQLiteClient is a hidden subcommand: one long-lived client
// process of the sqlite-bank workload, on its own replica directory, with
// graft_sync=remote. It reads requests as JSON lines on stdin and answers
// JSON lines on stdout.
func runJepsenSQLiteClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("jepsen-sqlite-client", "jepsen-sqlite-client --dir DIR --endpoint URL VID", stderr)
	var dir, endpoint string
	var timeout time.Duration
	fs.StringVar(&dir, "dir", "", "replica directory")
	fs.StringVar(&endpoint, "endpoint", "", "cluster endpoint")
	fs.DurationVar(&timeout, "timeout", 2*time.Second, "graft_timeout: bound on one page fetch, commit or push")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 || dir == "" || endpoint == "" {
		fs.Usage()
		return fmt.Errorf("want --dir, --endpoint and one volume ID")
	}
	vid, err := volume.ParseID(fs.Arg(0))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	q := url.Values{"vfs": {graftsqlite.VFSName}, "graft_dir": {dir}, "graft_endpoints": {endpoint},
		"graft_sync": {"remote"}, "graft_timeout": {timeout.String()}}
	conn, err := sqlite3.Open("file:" + vid.String() + "?" + q.Encode())
	if err != nil {
		return fmt.Errorf("open %s: %w", vid, err)
	}
	defer conn.Close()
	out := bufio.NewWriter(stdout)
	reply := func(r sqlClientReply) error {
		b, _ := json.Marshal(r)
		out.Write(append(b, '\n'))
		return out.Flush()
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var req sqlClientRequest
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			return fmt.Errorf("request %q: %w", in.Text(), err)
		}
		var r sqlClientReply
		switch req.Op {
		case "setup":
			r = sqlSetup(conn)
		case "transfer":
			r = sqlTransfer(conn, req, reply)
		case "read":
			r = sqlRead(conn)
		default:
			return fmt.Errorf("unknown op %q", req.Op)
		}
		if err := reply(r); err != nil {
			return err
		}
	}
	return in.Err()
}

// remoteLSN answers the remote LSN of the replica's latest snapshot.
func remoteLSN(conn *sqlite3.Conn, pragma string) (uint64, error) {
	st, _, err := conn.Prepare("PRAGMA " + pragma)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if !st.Step() {
		if err := st.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%s: no row", pragma)
	}
	for f := range strings.FieldsSeq(st.ColumnText(0)) {
		if v, ok := strings.CutPrefix(f, "remote="); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no remote LSN in %q", pragma, st.ColumnText(0))
}

func failReply(err error) sqlClientReply { return sqlClientReply{Type: "fail", Error: err.Error()} }

// sqlSetup creates the accounts in one transaction (one commit).
func sqlSetup(conn *sqlite3.Conn) sqlClientReply {
	if _, err := remoteLSN(conn, "graft_pull"); err != nil {
		return failReply(err)
	}
	var b strings.Builder
	b.WriteString("BEGIN IMMEDIATE; CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0), txn INTEGER NOT NULL DEFAULT 0);")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "INSERT INTO accounts(id, balance) VALUES (%d, 100);", i)
	}
	b.WriteString("COMMIT;")
	if err := conn.Exec(b.String()); err != nil {
		_ = conn.Exec("ROLLBACK")
		return sqlClientReply{Type: "info", Error: err.Error()}
	}
	return sqlRead(conn)
}

// sqlTransfer runs one transfer as one SQL transaction on the pulled head.
// Anything that fails before COMMIT leaves nothing applied (a commit is
// made only at COMMIT): fail. COMMIT answering BUSY_SNAPSHOT: the cluster
// (or the replica) refused it, fail. Any other COMMIT error: info.
func sqlTransfer(conn *sqlite3.Conn, req sqlClientRequest, reply func(sqlClientReply) error) sqlClientReply {
	base, err := remoteLSN(conn, "graft_pull")
	if err != nil {
		return failReply(err)
	}
	rollback := func(err error) sqlClientReply {
		if !conn.GetAutocommit() {
			_ = conn.Exec("ROLLBACK")
		}
		return failReply(err)
	}
	if err := conn.Exec("BEGIN IMMEDIATE"); err != nil {
		return rollback(fmt.Errorf("BEGIN IMMEDIATE: %w", err))
	}
	debit := "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?"
	if req.Txn != 0 {
		debit = "UPDATE accounts SET balance = balance - ?, txn = ? WHERE id = ? AND balance >= ?"
	}
	st, _, err := conn.Prepare(debit)
	if err != nil {
		return rollback(err)
	}
	if req.Txn != 0 {
		_ = st.BindInt64(1, req.Amount)
		_ = st.BindInt64(2, req.Txn)
		_ = st.BindInt64(3, req.From)
		_ = st.BindInt64(4, req.Amount)
	} else {
		_ = st.BindInt64(1, req.Amount)
		_ = st.BindInt64(2, req.From)
		_ = st.BindInt64(3, req.Amount)
	}
	err = st.Exec()
	st.Close()
	if err != nil {
		return rollback(fmt.Errorf("debit: %w", err))
	}
	debited := conn.Changes() == 1
	if debited && !plantedHalfTransfer {
		st, _, err := conn.Prepare("UPDATE accounts SET balance = balance + ? WHERE id = ?")
		if err != nil {
			return rollback(err)
		}
		_ = st.BindInt64(1, req.Amount)
		_ = st.BindInt64(2, req.To)
		err = st.Exec()
		st.Close()
		if err != nil {
			return rollback(fmt.Errorf("credit: %w", err))
		}
	}
	// Say what is about to be committed before COMMIT: a parent that
	// gives up on this process reads it after killing it.
	if err := reply(sqlClientReply{Prepared: true, Base: base, Debited: debited}); err != nil {
		return rollback(err)
	}
	if err := conn.Exec("COMMIT"); err != nil {
		r := sqlClientReply{Type: "info", Base: base, Debited: debited, Error: "COMMIT: " + err.Error()}
		if graftsqlite.IsBusySnapshot(err) {
			r.Type = "fail"
		}
		if !conn.GetAutocommit() {
			_ = conn.Exec("ROLLBACK")
		}
		return r
	}
	lsn, err := remoteLSN(conn, "graft_snapshot")
	if err != nil {
		return sqlClientReply{Type: "info", Base: base, Debited: debited, Error: "committed, then: " + err.Error()}
	}
	return sqlClientReply{Type: "ok", Base: base, LSN: lsn, Debited: debited}
}

// sqlRead pulls, reads every balance and the remote LSN they are at (one
// connection in this process, nothing moves the replica in between).
func sqlRead(conn *sqlite3.Conn) sqlClientReply {
	if _, err := remoteLSN(conn, "graft_pull"); err != nil {
		return failReply(err)
	}
	st, _, err := conn.Prepare("SELECT id, balance FROM accounts ORDER BY id")
	if err != nil {
		return failReply(err)
	}
	var values []int64
	for st.Step() {
		values = append(values, st.ColumnInt64(1))
	}
	err = st.Err()
	st.Close()
	if err != nil {
		return failReply(err)
	}
	lsn, err := remoteLSN(conn, "graft_snapshot")
	if err != nil {
		return failReply(err)
	}
	return sqlClientReply{Type: "ok", LSN: lsn, Values: values}
}
