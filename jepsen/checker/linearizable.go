package checker

import (
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/graft-cluster/graft/jepsen/history"
)

// regState is a volume's head: its LSN and the hash of the commit there
// (0 and "" for an empty volume).
type regState struct {
	LSN  uint64
	Hash string
}

// regInput is an operation's call: a commit on Base with Hash, or a read.
type regInput struct {
	Commit bool
	Base   uint64
	Hash   string
}

// regOutput is an operation's return: its completion type, and for ok
// commits the assigned LSN, for ok reads the head read.
type regOutput struct {
	Type history.Type
	LSN  uint64
	Hash string
}

// regStep is the sequential specification of a volume's commit chain.
// Unknown outcomes branch: the commit either applied or did not.
func regStep(state, input, output any) []any {
	s, in, out := state.(regState), input.(regInput), output.(regOutput)
	if !in.Commit {
		// Only ok reads are checked. An empty read hash means the reader
		// did not learn it; LSN 0 always has the empty hash.
		if out.LSN == s.LSN && (out.Hash == s.Hash || out.Hash == "" && out.LSN != 0) {
			return []any{s}
		}
		return nil
	}
	next := regState{LSN: in.Base + 1, Hash: in.Hash}
	switch out.Type {
	case history.OK:
		if s.LSN == in.Base && out.LSN == in.Base+1 {
			return []any{next}
		}
		// An identical commit on the same base is the same commit (its
		// hash is its identity, DESIGN.md §3.5): acknowledging it again
		// with the original LSN changes nothing.
		if s.LSN == in.Base+1 && s.Hash == in.Hash && out.LSN == in.Base+1 {
			return []any{s}
		}
		return nil
	case history.Fail:
		// A conflict: the base was not the head. (The workload records
		// every other error as info.)
		if s.LSN != in.Base {
			return []any{s}
		}
		return nil
	default:
		if s.LSN == in.Base {
			return []any{s, next}
		}
		return []any{s}
	}
}

// registerModel is RegisterModel's nondeterministic form.
var registerModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{regState{}} },
	Step: regStep,
	Hash: func(state any) uint64 {
		s := state.(regState)
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%s", s.LSN, s.Hash)
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		if !in.Commit {
			return fmt.Sprintf("read -> lsn=%d %s", out.LSN, short(out.Hash))
		}
		switch out.Type {
		case history.OK:
			return fmt.Sprintf("commit(base=%d, %s) -> ok lsn=%d", in.Base, short(in.Hash), out.LSN)
		case history.Fail:
			return fmt.Sprintf("commit(base=%d, %s) -> conflict", in.Base, short(in.Hash))
		default:
			return fmt.Sprintf("commit(base=%d, %s) -> unknown", in.Base, short(in.Hash))
		}
	},
	DescribeState: func(state any) string {
		s := state.(regState)
		return fmt.Sprintf("lsn=%d %s", s.LSN, short(s.Hash))
	},
}

// RegisterModel returns the Porcupine model Linearizable checks every
// volume against: a register of (lsn, hash) whose commits apply iff their
// base is the head, with unknown outcomes modelled nondeterministically.
// Pass it with a VolumeLinearization's Info to porcupine.Visualize.
func RegisterModel() porcupine.Model { return registerModel.ToModel() }

// VolumeLinearization is Porcupine's verdict on one volume and what its
// visualization needs.
type VolumeLinearization struct {
	VID string
	// Result is porcupine.Ok, Illegal or Unknown (timed out).
	Result porcupine.CheckResult
	// Info renders with porcupine.Visualize(RegisterModel(), Info, w).
	Info porcupine.LinearizationInfo
	// Ops is the number of operations checked.
	Ops int
}

// Linearizable checks the register workload: per volume, the commits
// (F "commit") and linearizable head reads (F "read" without a Base; a
// read with a Base is an at_least_lsn read, see ReadYourWrites) must be
// linearizable against RegisterModel. An ok commit takes effect once, at
// LSN Base+1; a Fail commit is a conflict (its base was not the head) and
// took no effect; an Info commit, or one never completed, may take effect
// at any time after its invocation, or never, so it is given a return time
// after the end of the history. Reads that did not complete ok are
// dropped: they have no effect. Before the search, conflicts that provably
// hold are dropped and unknown commits' intervals are shortened to where
// they can still take effect (see simplify); neither changes the verdict,
// and the visualization shows the simplified history.
//
// Volumes are checked in parallel; timeout bounds the whole check (0 is
// no limit) and a volume not decided in time is Unknown, as is a history
// with nothing to check. The second result holds Porcupine's information
// per volume, sorted by VID, for the report.
func Linearizable(ops []history.Op, timeout time.Duration) (Result, []VolumeLinearization) {
	var an anomalies
	pairs := history.Pairs(ops)
	var end int64
	for _, op := range ops {
		end = max(end, int64(op.Time)+1)
	}
	byVID := map[string][]porcupine.Operation{}
	var commitsOK, commitsFail, commitsInfo, reads int
	for _, p := range pairs {
		inv, done := p[0], p[1]
		var in regInput
		out := regOutput{Type: done.Type}
		switch {
		case inv.F == "commit":
			in = regInput{Commit: true, Base: inv.Base, Hash: commitHash(p)}
			switch done.Type {
			case history.OK:
				commitsOK++
				out.LSN = done.LSN
				if done.LSN != inv.Base+1 {
					an.addf("vid %s: commit %s on base %d was acked at lsn %d, want %d", inv.VID, opRef(p), inv.Base, done.LSN, inv.Base+1)
				}
			case history.Fail:
				commitsFail++
			default:
				commitsInfo++
				out.Type = history.Info
			}
		case inv.F == "read" && inv.Base == 0:
			if done.Type != history.OK {
				continue
			}
			reads++
			out.LSN, out.Hash = done.LSN, done.Hash
		default:
			continue
		}
		ret := int64(done.Time)
		if out.Type == history.Info || ret < int64(inv.Time) {
			ret = end
		}
		byVID[inv.VID] = append(byVID[inv.VID], porcupine.Operation{
			ClientId: inv.Process,
			Input:    in,
			Call:     int64(inv.Time),
			Output:   out,
			Return:   ret,
			Metadata: opRef(p),
		})
	}

	vids := make([]string, 0, len(byVID))
	conflictsDropped := 0
	for vid := range byVID {
		vids = append(vids, vid)
		kept, n := simplify(byVID[vid])
		conflictsDropped += n
		assignRows(kept)
		byVID[vid] = kept
	}
	sort.Strings(vids)
	lins := make([]VolumeLinearization, len(vids))
	checkVolumes(vids, byVID, timeout, lins)

	var illegal, undecided []string
	model := RegisterModel()
	for _, l := range lins {
		switch l.Result {
		case porcupine.Ok:
		case porcupine.Illegal:
			illegal = append(illegal, l.VID)
			an.addf("vid %s: %d ops are not linearizable; %s", l.VID, l.Ops, explainIllegal(model, l, byVID[l.VID]))
		default:
			undecided = append(undecided, l.VID)
		}
	}
	fallback := Valid
	if len(undecided) > 0 || len(vids) == 0 {
		fallback = Unknown
	}
	stats := map[string]any{
		"volumes":      len(vids),
		"commits_ok":   commitsOK,
		"commits_fail": commitsFail,
		"commits_info": commitsInfo,
		"reads_ok":     reads,
		// Conflicts that hold wherever they are placed; not searched.
		"conflicts_trivial": conflictsDropped,
	}
	if len(illegal) > 0 {
		stats["illegal_volumes"] = illegal
	}
	if len(undecided) > 0 {
		stats["timed_out_volumes"] = undecided
	}
	return an.result("linearizable", fallback, stats), lins
}

// checkVolumes runs Porcupine on every volume, GOMAXPROCS at a time, all
// within one deadline.
func checkVolumes(vids []string, byVID map[string][]porcupine.Operation, timeout time.Duration, out []VolumeLinearization) {
	model := RegisterModel()
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, vid := range vids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			vops := byVID[vid]
			out[i] = VolumeLinearization{VID: vid, Ops: len(vops), Result: porcupine.Unknown}
			var left time.Duration
			if !deadline.IsZero() {
				if left = time.Until(deadline); left <= 0 {
					return
				}
			}
			out[i].Result, out[i].Info = porcupine.CheckOperationsVerbose(model, vops, left)
		})
	}
	wg.Wait()
}

// simplify rewrites a volume's operations into an equivalent history
// (linearizable iff the original is) that Porcupine searches much faster.
// Conflicts and unknown outcomes are what make the search exponential: the
// former may be linearized anywhere the head is not their base, the latter
// anywhere after their invocation.
//
// Both use certificates: an ok commit on a base of b or more, or an ok
// read of an LSN above b, that returned at T proves that the head was
// above b at some point before T, and so forever after (heads only grow).
//
//   - A conflict (Fail) on base b that returned at or after such a T holds
//     right after the certificate: it changes nothing, so it can always be
//     placed there, and it is dropped.
//   - An unknown commit on base b can only take effect while the head is b:
//     before T, or not at all, and not taking effect is legal at any point.
//     So its return becomes T (or its call, if T came first).
//
// It returns the operations kept and the number of conflicts dropped.
func simplify(ops []porcupine.Operation) ([]porcupine.Operation, int) {
	type cert struct {
		level uint64 // the head is at least level after ret
		ret   int64
	}
	var cs []cert
	for _, op := range ops {
		in, out := op.Input.(regInput), op.Output.(regOutput)
		switch {
		case in.Commit && out.Type == history.OK:
			cs = append(cs, cert{in.Base + 1, op.Return})
		case !in.Commit:
			cs = append(cs, cert{out.LSN, op.Return})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].level < cs[j].level })
	for i := len(cs) - 2; i >= 0; i-- { // suffix minimum of ret
		cs[i].ret = min(cs[i].ret, cs[i+1].ret)
	}
	// above returns the earliest return of a certificate that the head
	// exceeded base.
	above := func(base uint64) (int64, bool) {
		j := sort.Search(len(cs), func(j int) bool { return cs[j].level >= base+1 })
		if j == len(cs) {
			return 0, false
		}
		return cs[j].ret, true
	}
	kept := ops[:0]
	dropped := 0
	for _, op := range ops {
		in, out := op.Input.(regInput), op.Output.(regOutput)
		if in.Commit && out.Type != history.OK {
			if t, ok := above(in.Base); ok && t <= op.Return {
				if out.Type == history.Fail {
					dropped++
					continue
				}
				op.Return = max(op.Call, t)
			}
		}
		kept = append(kept, op)
	}
	return kept, dropped
}

// assignRows sets ClientId to a dense visualization row: the operation's
// process keeps its row while it is free, otherwise the lowest free row is
// used (an unknown outcome occupies its row until the end).
func assignRows(ops []porcupine.Operation) {
	slices.SortStableFunc(ops, func(a, b porcupine.Operation) int {
		switch {
		case a.Call < b.Call:
			return -1
		case a.Call > b.Call:
			return 1
		}
		return 0
	})
	var rowEnd []int64
	procRow := map[int]int{}
	for i := range ops {
		op := &ops[i]
		row, ok := procRow[op.ClientId]
		if !ok || rowEnd[row] >= op.Call {
			row = -1
			for r, e := range rowEnd {
				if e < op.Call {
					row = r
					break
				}
			}
			if row < 0 {
				row = len(rowEnd)
				rowEnd = append(rowEnd, 0)
			}
		}
		procRow[op.ClientId] = row
		rowEnd[row] = op.Return
		op.ClientId = row
	}
}

// explainIllegal names the operation where the longest linearizable
// prefix Porcupine found stops: the earliest-invoked operation outside it.
func explainIllegal(model porcupine.Model, l VolumeLinearization, ops []porcupine.Operation) string {
	parts := l.Info.PartialLinearizationsOperations()
	if len(parts) == 0 {
		return "see linearizability.html"
	}
	var longest []porcupine.Operation
	for _, p := range parts[0] {
		if len(p) > len(longest) {
			longest = p
		}
	}
	in := map[string]bool{}
	for _, op := range longest {
		in[fmt.Sprint(op.Metadata)] = true
	}
	var first *porcupine.Operation
	for i := range ops {
		if op := &ops[i]; !in[fmt.Sprint(op.Metadata)] && (first == nil || op.Call < first.Call) {
			first = op
		}
	}
	msg := fmt.Sprintf("the longest linearizable prefix has %d ops", len(longest))
	if len(longest) > 0 {
		last := longest[len(longest)-1]
		msg += fmt.Sprintf(", ending with %v: %s", last.Metadata, model.DescribeOperation(last.Input, last.Output))
	}
	if first != nil {
		msg += fmt.Sprintf("; it cannot take %v: %s", first.Metadata, model.DescribeOperation(first.Input, first.Output))
	}
	return msg
}
