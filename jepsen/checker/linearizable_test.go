package checker_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

func TestLinearizable(t *testing.T) {
	const v = "vol1"
	for _, tc := range []struct {
		name    string
		ops     []history.Op
		want    checker.Verdict
		mention []string
	}{
		{
			name: "sequential chain with a conflict",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
				read(3, 1, v), ok(4, 1, "read", v, 1, "a"),
				commit(5, 0, v, 1, "b"), ok(6, 0, "commit", v, 2, ""),
				commit(7, 1, v, 1, "c"), fail(8, 1, "commit", v),
				read(9, 1, v), ok(10, 1, "read", v, 2, "b"),
			),
			want: checker.Valid,
		},
		{
			name: "empty volume read",
			ops:  hist(read(1, 0, v), ok(2, 0, "read", v, 0, "")),
			want: checker.Valid,
		},
		{
			name: "concurrent commits on one base, one wins",
			ops: hist(
				commit(1, 0, v, 0, "a"), commit(2, 1, v, 0, "b"),
				fail(3, 0, "commit", v), ok(4, 1, "commit", v, 1, ""),
				read(5, 2, v), ok(6, 2, "read", v, 1, "b"),
			),
			want: checker.Valid,
		},
		{
			name: "a read concurrent with a commit may see either head",
			ops: hist(
				read(1, 1, v), commit(2, 0, v, 0, "a"), ok(3, 0, "commit", v, 1, ""), ok(4, 1, "read", v, 0, ""),
				read(5, 1, v), commit(6, 0, v, 1, "b"), ok(7, 1, "read", v, 2, "b"), ok(8, 0, "commit", v, 2, ""),
			),
			want: checker.Valid,
		},
		{
			name: "info commit that must have landed",
			ops: hist(
				commit(1, 0, v, 0, "a"), info(2, 0, "commit", v),
				read(3, 1, v), ok(4, 1, "read", v, 1, "a"),
				commit(5, 1, v, 1, "b"), ok(6, 1, "commit", v, 2, ""),
			),
			want: checker.Valid,
		},
		{
			name: "info commit that must not have landed",
			ops: hist(
				commit(1, 0, v, 0, "a"), info(2, 0, "commit", v),
				commit(3, 1, v, 0, "b"), ok(4, 1, "commit", v, 1, ""),
				read(5, 1, v), ok(6, 1, "read", v, 1, "b"),
			),
			want: checker.Valid,
		},
		{
			name: "info commit landing late, after a later read",
			ops: hist(
				commit(1, 0, v, 0, "a"), info(2, 0, "commit", v),
				read(3, 1, v), ok(4, 1, "read", v, 0, ""),
				read(5, 1, v), ok(6, 1, "read", v, 1, "a"),
			),
			want: checker.Valid,
		},
		{
			name: "commit never completed is unknown",
			ops: hist(
				commit(1, 0, v, 0, "a"),
				read(3, 1, v), ok(4, 1, "read", v, 1, "a"),
			),
			want: checker.Valid,
		},
		{
			name: "failed reads are ignored",
			ops: hist(
				commit(0, 1, v, 0, "a"), ok(1, 1, "commit", v, 1, ""),
				read(1, 0, v), fail(2, 0, "read", v),
				read(3, 0, v), info(4, 0, "read", v),
			),
			want: checker.Valid,
		},
		{
			name: "at_least_lsn reads are not linearizable reads",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
				commit(3, 0, v, 1, "b"), ok(4, 0, "commit", v, 2, ""),
				ev{5, history.Op{Process: 1, Type: history.Invoke, F: "read", VID: v, Base: 1}}, ok(6, 1, "read", v, 1, "a"),
			),
			want: checker.Valid,
		},
		{
			name: "conflict after the head moved on",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
				commit(3, 1, v, 0, "b"), fail(4, 1, "commit", v),
			),
			want: checker.Valid,
		},
		{
			name: "unknown commit on a base another commit won",
			ops: hist(
				commit(1, 0, v, 0, "a"), info(2, 0, "commit", v),
				commit(3, 1, v, 0, "b"), ok(4, 1, "commit", v, 1, ""),
				read(5, 1, v), ok(6, 1, "read", v, 1, "a"),
			),
			want:    checker.Invalid,
			mention: []string{"not linearizable", "cannot take op 4"},
		},
		{
			name: "stale read after a newer commit completed",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
				commit(3, 0, v, 1, "b"), ok(4, 0, "commit", v, 2, ""),
				read(5, 1, v), ok(6, 1, "read", v, 1, "a"),
			),
			want:    checker.Invalid,
			mention: []string{"vid vol1", "not linearizable", "op 4"},
		},
		{
			name: "lost ack: a read after the ack sees the empty volume",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
				read(3, 1, v), ok(4, 1, "read", v, 0, ""),
			),
			want:    checker.Invalid,
			mention: []string{"vid vol1", "not linearizable"},
		},
		{
			name: "two commits acked at one lsn",
			ops: hist(
				commit(1, 0, v, 0, "a"), commit(2, 1, v, 0, "b"),
				ok(3, 0, "commit", v, 1, ""), ok(4, 1, "commit", v, 1, ""),
			),
			want:    checker.Invalid,
			mention: []string{"vid vol1", "not linearizable"},
		},
		{
			name: "failed commit is visible",
			ops: hist(
				commit(1, 0, v, 0, "a"), fail(2, 0, "commit", v),
				read(3, 1, v), ok(4, 1, "read", v, 1, "a"),
			),
			want:    checker.Invalid,
			mention: []string{"not linearizable"},
		},
		{
			name: "conflict reported while the base was the head",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
				commit(3, 0, v, 1, "b"), fail(4, 0, "commit", v),
			),
			want:    checker.Invalid,
			mention: []string{"not linearizable", "op 2"},
		},
		{
			name: "read of a hash nobody committed",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 1, ""),
				read(3, 1, v), ok(4, 1, "read", v, 1, "zzz"),
			),
			want: checker.Invalid,
		},
		{
			name: "ack at the wrong lsn",
			ops: hist(
				commit(1, 0, v, 0, "a"), ok(2, 0, "commit", v, 5, ""),
			),
			want:    checker.Invalid,
			mention: []string{"vid vol1", "acked at lsn 5, want 1", "op 0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, lins := checker.Linearizable(tc.ops, 10*time.Second)
			wantVerdict(t, r, tc.want, tc.mention...)
			if len(lins) != 1 || lins[0].VID != v {
				t.Fatalf("got %d volume results: %+v", len(lins), lins)
			}
		})
	}
}

func TestLinearizable_Empty(t *testing.T) {
	r, lins := checker.Linearizable(hist(read(1, 0, "v"), fail(2, 0, "read", "v")), 0)
	wantVerdict(t, r, checker.Unknown)
	if len(lins) != 0 {
		t.Fatalf("volumes %+v", lins)
	}
}

func TestLinearizable_PerVolume(t *testing.T) {
	ops := hist(
		commit(1, 0, "good", 0, "a"), ok(2, 0, "commit", "good", 1, ""),
		commit(3, 1, "bad", 0, "b"), ok(4, 1, "commit", "bad", 1, ""),
		read(5, 0, "good"), ok(6, 0, "read", "good", 1, "a"),
		read(7, 1, "bad"), ok(8, 1, "read", "bad", 0, ""),
	)
	r, lins := checker.Linearizable(ops, 0)
	wantVerdict(t, r, checker.Invalid, "vid bad")
	if len(lins) != 2 || lins[0].VID != "bad" || lins[0].Result != porcupine.Illegal || lins[1].Result != porcupine.Ok {
		t.Fatalf("per volume: %+v", lins)
	}
	if got := r.Stats["illegal_volumes"]; len(got.([]string)) != 1 {
		t.Fatalf("illegal_volumes = %v", got)
	}
}

func TestLinearizable_Timeout(t *testing.T) {
	ops := hist(commit(1, 0, "v", 0, "a"), ok(2, 0, "commit", "v", 1, ""))
	r, lins := checker.Linearizable(ops, time.Nanosecond)
	wantVerdict(t, r, checker.Unknown)
	if lins[0].Result != porcupine.Unknown {
		t.Fatalf("result %s", lins[0].Result)
	}
}

// TestLinearizable_Contention checks a larger valid history quickly: many
// processes racing on each base, with unknown outcomes.
func TestLinearizable_Contention(t *testing.T) {
	var evs []ev
	head, hash := uint64(0), ""
	tm := 0
	for round := range 200 {
		base := head
		// 4 processes invoke on the same base; one wins, one is unknown
		// (and did not land), the rest conflict.
		for p := range 4 {
			evs = append(evs, commit(tm, round*4+p, "v", base, string(rune('a'+p))+strconv.Itoa(round)))
			tm++
		}
		evs = append(evs, ok(tm, round*4, "commit", "v", base+1, ""))
		evs = append(evs, info(tm+1, round*4+1, "commit", "v"))
		evs = append(evs, fail(tm+2, round*4+2, "commit", "v"), fail(tm+3, round*4+3, "commit", "v"))
		tm += 4
		head, hash = base+1, "a"+strconv.Itoa(round)
		evs = append(evs, read(tm, 1000+round, "v"), ok(tm+1, 1000+round, "read", "v", head, hash))
		tm += 2
	}
	r, _ := checker.Linearizable(hist(evs...), time.Minute)
	wantVerdict(t, r, checker.Valid)
	if r.Stats["commits_info"] != 200 {
		t.Fatalf("stats %v", r.Stats)
	}
}

func TestRegisterModel_Visualize(t *testing.T) {
	ops := hist(
		commit(1, 0, "v", 0, "a"), ok(2, 0, "commit", "v", 1, ""),
		read(3, 1, "v"), ok(4, 1, "read", "v", 0, ""),
	)
	_, lins := checker.Linearizable(ops, 0)
	path := t.TempDir() + "/l.html"
	if err := porcupine.VisualizePath(checker.RegisterModel(), lins[0].Info, path); err != nil {
		t.Fatal(err)
	}
}

// simulate runs procs processes against a correct in-memory volume for
// steps steps: each operation takes effect at one moment between its
// invocation and completion, and some complete as unknown (info), having
// taken effect or not.
func simulate(seed uint64, vid string, procs, steps int) []history.Op {
	rng := rand.New(rand.NewPCG(seed, 1))
	type pending struct {
		inv     history.Op
		applied bool
		done    history.Op
	}
	var out []history.Op
	var head uint64
	hashes := map[uint64]string{0: ""}
	seen := make([]uint64, procs) // head each process last learned
	ops := make([]*pending, procs)
	next := make([]int, procs) // process number of each worker
	for w := range next {
		next[w] = w
	}
	tm := time.Duration(0)
	add := func(op history.Op) {
		tm += time.Millisecond
		op.Index, op.Time = len(out), tm
		out = append(out, op)
	}
	for i := 0; i < steps; i++ {
		w := rng.IntN(procs)
		p := ops[w]
		switch {
		case p == nil: // invoke
			if rng.IntN(4) == 0 {
				p = &pending{inv: history.Op{Process: next[w], Type: history.Invoke, F: "read", VID: vid}}
			} else {
				base := seen[w]
				p = &pending{inv: history.Op{Process: next[w], Type: history.Invoke, F: "commit", VID: vid, Base: base, Hash: fmt.Sprintf("%s-%d", vid, i)}}
			}
			ops[w] = p
			add(p.inv)
		case !p.applied && p.inv.F == "commit" && rng.IntN(20) == 0:
			// Lost before taking effect: unknown, never applied.
			p.applied = true
			p.done = history.Op{Process: p.inv.Process, Type: history.Info, F: "commit", VID: vid, Error: "lost"}
		case !p.applied: // take effect now
			p.applied = true
			in := p.inv
			p.done = history.Op{Process: in.Process, F: in.F, VID: vid}
			if in.F == "read" {
				p.done.Type, p.done.LSN, p.done.Hash = history.OK, head, hashes[head]
				seen[w] = head
			} else if head == in.Base {
				head++
				hashes[head] = in.Hash
				p.done.Type, p.done.LSN = history.OK, head
				seen[w] = head
			} else {
				p.done.Type, p.done.Head = history.Fail, head
				seen[w] = head
			}
			if in.F == "commit" && rng.IntN(10) == 0 {
				// Unknown outcome, although it took effect (or failed).
				p.done = history.Op{Process: in.Process, Type: history.Info, F: in.F, VID: vid, Error: "timeout"}
			}
		default: // complete
			add(p.done)
			if p.done.Type == history.Info {
				next[w] += procs
			}
			ops[w] = nil
		}
	}
	return out
}

func TestLinearizable_Simulated(t *testing.T) {
	var ops []history.Op
	for i, vid := range []string{"v1", "v2", "v3"} {
		ops = append(ops, simulate(uint64(i), vid, 8, 3000)...)
	}
	for i := range ops { // interleave volumes in time: renumber by time order
		ops[i].Index = i
	}
	r, lins := checker.Linearizable(ops, time.Minute)
	wantVerdict(t, r, checker.Valid)
	if len(lins) != 3 || r.Stats["commits_info"].(int) == 0 || r.Stats["commits_fail"].(int) == 0 {
		t.Fatalf("stats %v", r.Stats)
	}

	// A read after everything completed that misses the last ack.
	var last history.Op
	for _, op := range ops {
		if op.VID == "v2" && op.F == "commit" && op.Type == history.OK {
			last = op
		}
	}
	end := ops[len(ops)-1].Time
	stale := append(append([]history.Op{}, ops...),
		history.Op{Index: len(ops), Process: 999, Type: history.Invoke, F: "read", VID: "v2", Time: end + 1},
		history.Op{Index: len(ops) + 1, Process: 999, Type: history.OK, F: "read", VID: "v2", LSN: last.LSN - 1, Time: end + 2},
	)
	r, _ = checker.Linearizable(stale, time.Minute)
	wantVerdict(t, r, checker.Invalid, "vid v2", fmt.Sprintf("op %d", len(ops)))
}
