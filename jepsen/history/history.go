// Package history records what clients of a consistency test did and saw:
// one event when an operation is invoked and one when it completes (ok,
// fail) or is left undecided (info: the outcome is unknown, e.g. a timeout
// or a lost connection), with real-time stamps, in the style of Jepsen.
package history

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Type is an event's kind.
type Type string

// Event kinds.
const (
	// Invoke starts an operation.
	Invoke Type = "invoke"
	// OK means the operation took effect, with the recorded result.
	OK Type = "ok"
	// Fail means the operation certainly did not take effect.
	Fail Type = "fail"
	// Info means the outcome is unknown: it may or may not have taken
	// effect, at any time after its invocation.
	Info Type = "info"
)

// Op is one event. An operation is an Invoke followed by exactly one
// completion (OK, Fail or Info) with the same Process; a process runs one
// operation at a time. Fields not meaningful for an F are left zero.
type Op struct {
	Index   int    `json:"index"`
	Process int    `json:"process"`
	Type    Type   `json:"type"`
	F       string `json:"f"`              // "commit", "read", "transfer", "balances", ...
	Node    int    `json:"node"`           // endpoint the client used (0-based), -1 if several
	VID     string `json:"vid,omitempty"`  // volume
	Base    uint64 `json:"base,omitempty"` // commit: base LSN
	LSN     uint64 `json:"lsn,omitempty"`  // commit ok: assigned LSN; read ok: LSN read at
	// Hash is a commit's identity (volume.CommitHash of base+1, hex) on
	// invoke and completion; on a read, the hash of the commit at LSN.
	Hash string `json:"hash,omitempty"`
	// Head is the head LSN a conflict (fail) reported.
	Head uint64 `json:"head,omitempty"`
	// Seed regenerates the pages a commit wrote (see the workload), so a
	// checker can verify their bytes without storing them.
	Seed uint64 `json:"seed,omitempty"`
	// Pages are the page indexes a commit wrote or a read read.
	Pages []uint32 `json:"pages,omitempty"`
	// Values are workload values: bank balances read, or a transfer's
	// (from, to, amount).
	Values []int64 `json:"values,omitempty"`
	// Key is an object-store key (the quarantine nemesis: the object it
	// planted, or the one a node's status named).
	Key string `json:"key,omitempty"`
	// Via is the edge a read went through ("e1", ...), "" for a node.
	Via string `json:"via,omitempty"`
	// PageReads are the pages a read read (register through edges): each
	// page's version and a sum of its bytes, for checker.PageReads.
	PageReads []PageRead `json:"page_reads,omitempty"`
	// PageReadLost are page reads of a read that the server answered with
	// data_loss (flushed data corrupt or missing in the object store):
	// "lsn L: error". A correct cluster never answers so.
	PageReadLost []string `json:"page_read_lost,omitempty"`
	// Time is the event's time since the recorder started.
	Time  time.Duration `json:"time_ns"`
	Error string        `json:"error,omitempty"`
}

// PageRead is one page of a ReadPages answer: page Idx of the op's volume
// at snapshot LSN was version Ver (0: never written) with bytes whose
// FNV-64a sum is Sum (hex).
type PageRead struct {
	LSN uint64 `json:"lsn"`
	Idx uint32 `json:"idx"`
	Ver uint64 `json:"ver"`
	Sum string `json:"sum"`
}

// Recorder is a concurrency-safe, append-only history.
type Recorder struct {
	mu    sync.Mutex
	start time.Time
	ops   []Op
}

// NewRecorder starts a history now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Start returns when the recorder started.
func (r *Recorder) Start() time.Time { return r.start }

// Add stamps op with its index and the time since the start, appends it
// and returns it.
func (r *Recorder) Add(op Op) Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Index = len(r.ops)
	op.Time = time.Since(r.start)
	r.ops = append(r.ops, op)
	return op
}

// Ops returns a copy of the history so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// WriteJSONL writes one JSON object per line.
func WriteJSONL(w io.Writer, ops []Op) error {
	enc := json.NewEncoder(w)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			return err
		}
	}
	return nil
}

// ReadFile reads a history written by WriteJSONL.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []Op
	dec := json.NewDecoder(f)
	for dec.More() {
		var op Op
		if err := dec.Decode(&op); err != nil {
			return nil, fmt.Errorf("read history %s: op %d: %w", path, len(ops), err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// Pairs matches every invocation with its completion: it returns, per
// operation in invocation order, the invoke event and the completion (Type
// Info with Time -1 if the history ended before it completed).
func Pairs(ops []Op) [][2]Op {
	open := map[int]int{} // process -> index in out
	var out [][2]Op
	for _, op := range ops {
		if op.Type == Invoke {
			open[op.Process] = len(out)
			out = append(out, [2]Op{op, {Process: op.Process, Type: Info, F: op.F, Time: -1}})
			continue
		}
		if i, ok := open[op.Process]; ok {
			out[i][1] = op
			delete(open, op.Process)
		}
	}
	return out
}
