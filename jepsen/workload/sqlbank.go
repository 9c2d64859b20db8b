package workload

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/volume"
)

// SQLBankUniqueTxn makes each transfer also write a random txn id into
// the debited row. It is off: two replicas that run the same transfer
// (same accounts, same amount) on the same head used to make
// byte-identical pages, so the same commit hash, and the cluster
// acknowledged both while applying one (checker.SQLBank: "two acknowledged
// transfers claim lsn 91", 15 s, no faults). The VFS now stamps a nonce
// into every commit (sqlite/file.go hdrNonce), and the workload leaves
// identical transfers identical so the suite would catch that bug again.
var SQLBankUniqueTxn = false

// SQLBank is the sqlite-bank workload: the bank as a SQLite database on a
// volume (sqlite/), table accounts(id, balance CHECK (balance >= 0), txn) with
// BankAccounts rows of BankInitial. Each worker is a separate OS process,
// `graft jepsen-sqlite-client`, with its own replica directory and one
// node's client proxy as endpoint, graft_sync=remote; it runs one
// operation at a time, read as a JSON line on stdin:
//
//   - transfer: PRAGMA graft_pull; BEGIN IMMEDIATE; UPDATE accounts SET
//     balance = balance - :a WHERE id = :from AND balance >= :a; only if
//     that changed a row, UPDATE ... + :a WHERE id = :to; COMMIT. Recorded
//     (F "transfer", Values from, to, amount, debited 0/1) with the remote
//     LSN it ran on (Base) and, ok, the LSN of its commit. ok: the cluster
//     acknowledged it; fail: BUSY_SNAPSHOT or anything before COMMIT
//     (certainly not applied); info: any other COMMIT error (the push may
//     still land).
//   - read: PRAGMA graft_pull; SELECT id, balance FROM accounts ORDER BY
//     id; recorded as F "balances" at the remote LSN (graft_snapshot).
//
// After an info the process is killed and its replica directory removed
// (its recorded push could otherwise be resent), and the worker starts a
// fresh one under a new process number. Checked by checker.Bank (reads)
// and checker.SQLBank (the chain of transfers reconstructed up to a final
// read by a fresh replica, see Final).
type SQLBank struct {
	seed uint64
	vid  volume.ID
}

// Name implements Workload.
func (b *SQLBank) Name() string { return "sqlite-bank" }

// VIDs implements Workload.
func (b *SQLBank) VIDs() []volume.ID { return []volume.ID{b.vid} }

// sqlReply is a line of graft jepsen-sqlite-client (cmd/graft/jepsen_sqlite.go).
type sqlReply struct {
	Prepared bool    `json:"prepared"`
	Type     string  `json:"type"`
	Base     uint64  `json:"base"`
	LSN      uint64  `json:"lsn"`
	Debited  bool    `json:"debited"`
	Values   []int64 `json:"values"`
	Error    string  `json:"error"`
}

// sqlProc is one client process.
type sqlProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan []byte // stdout, closed at EOF
	dir   string
}

func startSQLProc(env *Env, vid volume.ID, endpoint, dir string) (*sqlProc, error) {
	cmd := exec.Command(env.Binary, "jepsen-sqlite-client", "--dir", dir, "--endpoint", endpoint,
		"--timeout", env.OpTimeout.String(), vid.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	stderr, err := os.Create(dir + ".stderr")
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		stderr.Close()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stderr.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return nil, err
	}
	stderr.Close() // the child has its own descriptor
	p := &sqlProc{cmd: cmd, stdin: stdin, lines: make(chan []byte, 16), dir: dir}
	go func() { // owned: ends at the child's EOF, which stop guarantees
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	return p, nil
}

// do sends one request and waits up to d for its final line. prepared is
// the transfer's line written before COMMIT, if any. On a timeout or a
// dead child, the process is killed and its output drained (a prepared
// line written just before the kill is still read), and done is false.
func (p *sqlProc) do(req map[string]any, d time.Duration) (prepared *sqlReply, final sqlReply, done bool) {
	b, _ := json.Marshal(req)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.stop()
		return p.drain(nil), sqlReply{Error: "write request: " + err.Error()}, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.stop()
				return prepared, sqlReply{Error: "client process exited"}, false
			}
			var r sqlReply
			if err := json.Unmarshal(line, &r); err != nil {
				p.stop()
				return p.drain(prepared), sqlReply{Error: fmt.Sprintf("bad reply %q", line)}, false
			}
			if r.Prepared {
				prepared = &r
				continue
			}
			return prepared, r, true
		case <-t.C:
			p.stop()
			return p.drain(prepared), sqlReply{Error: fmt.Sprintf("no answer in %s: client process killed", d)}, false
		}
	}
}

// drain reads what is left of a stopped child's output for a prepared line.
func (p *sqlProc) drain(prepared *sqlReply) *sqlReply {
	for line := range p.lines {
		var r sqlReply
		if json.Unmarshal(line, &r) == nil && r.Prepared {
			prepared = &r
		}
	}
	return prepared
}

// stop kills the child and waits for it.
func (p *sqlProc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.stdin.Close()
	_ = p.cmd.Wait()
}

// opTimeout bounds one client operation: a pull, page fetches, a commit and
// its push, each bounded by env.OpTimeout in the child.
func sqlOpTimeout(env *Env) time.Duration { return 5 * env.OpTimeout }

// Setup creates the accounts through one replica (one commit) and records
// them as F "setup" at its LSN.
func (b *SQLBank) Setup(ctx context.Context, env *Env) error {
	env.defaults()
	if env.Binary == "" || env.Dir == "" {
		return errors.New("sqlite-bank: env.Binary and env.Dir are required")
	}
	b.vid = mintVIDs(1, b.seed^0x5b4b)[0]
	dir := filepath.Join(env.Dir, "setup")
	p, err := startSQLProc(env, b.vid, env.Endpoints[0], dir)
	if err != nil {
		return err
	}
	defer p.stop()
	inv := env.Rec.Add(history.Op{Process: -1, Type: history.Invoke, F: "setup", Node: 0, VID: b.vid.String()})
	_, r, done := p.do(map[string]any{"op": "setup"}, time.Minute)
	out := inv
	out.Type, out.Error, out.LSN, out.Values = history.Info, r.Error, r.LSN, r.Values
	if done && r.Type == "ok" {
		out.Type = history.OK
	}
	env.Rec.Add(out)
	if out.Type != history.OK {
		return fmt.Errorf("sqlite-bank: create the accounts: %s", r.Error)
	}
	return nil
}

// Run implements Workload: transfers (3 in 4) and balance reads.
func (b *SQLBank) Run(ctx context.Context, env *Env) error {
	env.defaults()
	var mu sync.Mutex
	procs := map[int]*sqlProc{} // by worker
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range procs {
			p.stop()
		}
	}()
	processes(ctx, env.Processes, env.Seed, func(ctx context.Context, proc, w int, rng *rand.Rand) bool {
		node := w % len(env.Endpoints)
		mu.Lock()
		p := procs[w]
		mu.Unlock()
		if p == nil {
			var err error
			p, err = startSQLProc(env, b.vid, env.Endpoints[node], filepath.Join(env.Dir, "p"+strconv.Itoa(proc)))
			if err != nil {
				env.Log.Warn("sqlite-bank: start client", "err", err)
				sleep(ctx, time.Second)
				return false
			}
			mu.Lock()
			procs[w] = p
			mu.Unlock()
		}
		retire := func() {
			p.stop()
			_ = os.RemoveAll(p.dir) // its recorded push must never be resent
			mu.Lock()
			delete(procs, w)
			mu.Unlock()
		}
		if rng.IntN(4) == 0 {
			inv := env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "balances", Node: node, VID: b.vid.String()})
			_, r, done := p.do(map[string]any{"op": "read"}, sqlOpTimeout(env))
			out := inv
			out.Type, out.Error = history.Fail, r.Error // a read changes nothing
			if done && r.Type == "ok" {
				out.Type, out.LSN, out.Values = history.OK, r.LSN, r.Values
			}
			env.Rec.Add(out)
			if !done || stuck(r.Error) {
				retire()
				return true
			}
			return false
		}
		from, to := 1+rng.IntN(BankAccounts), 1+rng.IntN(BankAccounts-1)
		if to >= from {
			to++
		}
		amount := int64(1 + rng.IntN(40))
		inv := env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "transfer", Node: node, VID: b.vid.String(),
			Values: []int64{int64(from), int64(to), amount}})
		// txn makes the transfer's pages unique (see SQLBankUniqueTxn).
		req := map[string]any{"op": "transfer", "from": from, "to": to, "amount": amount}
		if SQLBankUniqueTxn {
			req["txn"] = 1 + rng.Int64N(1<<62)
		}
		prepared, r, done := p.do(req, sqlOpTimeout(env))
		out := inv
		out.Error = r.Error
		switch {
		case done && r.Type == "ok":
			out.Type, out.Base, out.LSN = history.OK, r.Base, r.LSN
		case done && r.Type == "fail":
			out.Type, out.Base = history.Fail, r.Base
		case prepared != nil:
			// COMMIT was (or was about to be) issued: unknown.
			out.Type, out.Base = history.Info, prepared.Base
			r.Debited = prepared.Debited
		default:
			// Killed before it announced COMMIT: nothing was committed.
			out.Type = history.Fail
		}
		debited := int64(0)
		if r.Debited {
			debited = 1
		}
		out.Values = []int64{int64(from), int64(to), amount, debited}
		env.Rec.Add(out)
		if out.Type == history.Info || !done || stuck(r.Error) {
			retire()
			return true
		}
		if rng.IntN(sqlColdEvery) == 0 {
			// A fresh replica starts cold: its first reads fetch every
			// page it needs through the nodes, from the bucket once
			// flushed, so the s3 row's faults reach the SQL clients.
			retire()
		}
		return false
	})
	return nil
}

// sqlColdEvery: a worker replaces its replica by a cold one after about
// one transfer in sqlColdEvery.
const sqlColdEvery = 50

// stuck reports whether a replica stays refused until PRAGMA graft_reset:
// a rejected push whose automatic reset failed (the cluster unreachable)
// leaves the volume rejected_commit, and every graft_pull answers that at
// once (seen: partition-leader,kill-leader seed 1 looped a million times).
// The worker retires the process and starts on a fresh replica, as for an
// unknown outcome; the rejected commit is certain not to land.
func stuck(err string) bool { return strings.Contains(err, "rejected_commit") }

// Final reads the balances through a fresh replica (after the cluster
// healed) and records them as F "final": the state checker.SQLBank must
// explain. It retries for up to budget.
func (b *SQLBank) Final(ctx context.Context, env *Env, budget time.Duration) {
	env.defaults()
	deadline := time.Now().Add(budget)
	for attempt := 1; ; attempt++ {
		dir := filepath.Join(env.Dir, "final"+strconv.Itoa(attempt))
		node := (attempt - 1) % len(env.Endpoints)
		inv := env.Rec.Add(history.Op{Process: -2 - attempt, Type: history.Invoke, F: "final", Node: node, VID: b.vid.String()})
		out := inv
		out.Type = history.Fail
		p, err := startSQLProc(env, b.vid, env.Endpoints[node], dir)
		if err != nil {
			out.Error = err.Error()
		} else {
			_, r, done := p.do(map[string]any{"op": "read"}, sqlOpTimeout(env))
			p.stop()
			out.Error = r.Error
			if done && r.Type == "ok" {
				out.Type, out.LSN, out.Values = history.OK, r.LSN, r.Values
			}
		}
		env.Rec.Add(out)
		if out.Type == history.OK || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		sleep(ctx, time.Second)
	}
}
