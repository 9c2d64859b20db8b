package jepsen

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/nemesis"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP graft_flush_errors_total Flush round attempts that failed.
# TYPE graft_flush_errors_total counter
graft_flush_errors_total 3
graft_objstore_put_errors_total{kind="segment"} 2
go_goroutines 40
graft_raft_state 2
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"graft_flush_errors_total": 3, `graft_objstore_put_errors_total{kind="segment"}`: 2, "graft_raft_state": 2}
	if len(m) != len(want) {
		t.Fatalf("parsed %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func nodes(ms ...map[string]float64) []map[string]float64 { return ms }

func TestIncrease(t *testing.T) {
	const c = "graft_flush_errors_total"
	span := []sample{
		{Nodes: nodes(map[string]float64{c: 5}, map[string]float64{c: 1})},
		{Nodes: nodes(map[string]float64{c: 7}, nil)},                      // n2 paused
		{Nodes: nodes(map[string]float64{c: 2}, map[string]float64{c: 4})}, // n1 restarted
	}
	// n1: +2, then a restart counts its new value 2; n2: 1 -> 4.
	if got := increase(span, c); got != 7 {
		t.Errorf("increase = %v, want 7", got)
	}
}

func TestLeaderChanges(t *testing.T) {
	for _, tc := range []struct {
		seq  []string
		want int
	}{
		{[]string{"n1"}, 0},
		{[]string{"n1", "-", "n1"}, 0},
		{[]string{"n1", "-", "n2"}, 1},
		{[]string{"-", "n2", "n3", "n2"}, 2},
		{nil, 0},
	} {
		if got := leaderChanges(tc.seq); got != tc.want {
			t.Errorf("leaderChanges(%q) = %d, want %d", tc.seq, got, tc.want)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for msg, want := range map[string]string{
		"unavailable: no leader": "unavailable",
		"client: commit on base 3 conflicts with head 5: aborted: stale base": "aborted",
		"read: data_loss: flushed data missing from the object store":         "data_loss",
		"context deadline exceeded":                                           "deadline_exceeded",
		"deadline_exceeded: context deadline exceeded":                        "deadline_exceeded",
		"connection refused":                                                  "other",
		"remote: nounavailable: x":                                            "other",
	} {
		if got := errorCode(msg); got != want {
			t.Errorf("errorCode(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestIsolated(t *testing.T) {
	x := newExposures(time.Now(), 3)
	cutOf := func(groups [][]int) map[[2]int]bool {
		x.partition(groups)
		return x.cut
	}
	for _, tc := range []struct {
		name string
		cut  map[[2]int]bool
		want []int
	}{
		{"none", map[[2]int]bool{}, nil},
		{"leader alone", cutOf([][]int{{1}, {0, 2}}), []int{1}},
		{"everyone alone", cutOf([][]int{{0}, {1}, {2}}), []int{0, 1, 2}},
		// ring 0 -> 1 -> 2 -> 0: each reaches one other and is reached by one.
		{"ring", map[[2]int]bool{{0, 2}: true, {1, 0}: true, {2, 1}: true}, nil},
		// n0 can reach nobody, though both reach it.
		{"one-way out", map[[2]int]bool{{0, 1}: true, {0, 2}: true}, []int{0}},
	} {
		if got := isolated(3, tc.cut); !slices.Equal(got, tc.want) {
			t.Errorf("%s: isolated = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEffectsOf(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	s := func(at time.Duration, flushErrs, term float64, leader int) sample {
		out := sample{At: at, S3Injected: -1, S3Resets: -1}
		for i := range 3 {
			m := map[string]float64{metricFlushErrors: flushErrs, metricRaftTerm: term, metricRaftState: 0}
			if i == leader {
				m[metricRaftState] = raftStateLeader
			}
			out.Nodes = append(out.Nodes, m)
		}
		return out
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	windows := []nemesis.Window{
		{Name: "s3", What: "blackhole: object-store link holds every byte", Start: sec(1), End: sec(3)},
		{Name: "s3-reset", What: "reset: every object-store connection reset (RST)", Start: sec(5), End: sec(7)},
		{Name: "partition-leader", What: "isolate leader n1", Start: sec(10), End: sec(12)},
	}
	samples := []sample{
		s(sec(0.5), 0, 2, 0), s(sec(2), 0, 2, 0), s(sec(4), 0, 2, 0), // blackhole: nothing failed
		s(sec(6), 1, 2, 0), s(sec(8.5), 3, 2, 0), // reset: a round failed on each node
		s(sec(9.5), 3, 2, 0), s(sec(11), 3, 3, 1), s(sec(13.5), 3, 3, 1), // partition: n1 -> n2
	}
	spans := []exposure{{Node: 0, Kind: "isolated", From: sec(10), To: sec(12)}}
	ops := []history.Op{
		{Process: 1, Type: history.Invoke, F: "read", Node: 0, Time: sec(10.5)},
		{Process: 1, Type: history.OK, F: "read", Node: 0, Time: sec(11)}, // answered by isolated n1
		{Process: 3, Type: history.Invoke, F: "read", Node: 0, Time: sec(9.9)},
		{Process: 3, Type: history.OK, F: "read", Node: 0, Time: sec(10.2)}, // sent before the cut
		{Process: 2, Type: history.Invoke, F: "commit", Node: 1, Time: sec(10.5)},
		{Process: 2, Type: history.Info, F: "commit", Node: 1, Time: sec(11.5), Error: "unavailable: no leader"},
	}
	got := effectsOf(windows, samples, spans, ops, ids)
	if len(got) != 3 {
		t.Fatalf("%d effects, want 3", len(got))
	}
	bh, rs, pl := got[0], got[1], got[2]
	if bh.Mode != "s3-blackhole" || bh.NoEffect != "no flush round failed" || !strings.Contains(bh.Summary, "s3-blackhole 1.0-3.0 s: no effect: no flush round failed") {
		t.Errorf("blackhole effect = %+v", bh)
	}
	if rs.FlushRoundsFailed != 9 || rs.NoEffect != "" {
		t.Errorf("reset: %d failed rounds, no effect %q; want 9 and none", rs.FlushRoundsFailed, rs.NoEffect)
	}
	if pl.LeaderChanges != 1 || pl.TermBefore != 2 || pl.TermAfter != 3 || pl.NoEffect != "" {
		t.Errorf("partition-leader: %+v", pl)
	}
	if pl.ReadsFromIsolated != 1 || pl.OpsOK != 2 || pl.UnknownOutcomes != 1 || pl.ErrorsByCode["unavailable"] != 1 {
		t.Errorf("partition-leader history counts: %+v", pl)
	}
	if !slices.Equal(pl.Exposed, []string{"n1 isolated"}) {
		t.Errorf("exposed = %q", pl.Exposed)
	}
}

func TestEffectsOf_leaderFaultWithoutElection(t *testing.T) {
	w := []nemesis.Window{{Name: "kill-leader", What: "SIGKILL n1", Start: time.Second, End: 2 * time.Second}}
	samp := func(at time.Duration) sample {
		return sample{At: at, S3Injected: -1, S3Resets: -1, Nodes: nodes(
			map[string]float64{metricRaftState: raftStateLeader, metricRaftTerm: 4}, map[string]float64{metricRaftTerm: 4}, nil)}
	}
	got := effectsOf(w, []sample{samp(0), samp(3 * time.Second)}, nil, nil, []string{"n1", "n2", "n3"})
	if got[0].NoEffect != "no leadership change" || !slices.Equal(got[0].Unscraped, []string{"n3"}) {
		t.Errorf("effect = %+v", got[0])
	}
}

func TestExposures(t *testing.T) {
	x := newExposures(time.Now(), 3)
	x.partition([][]int{{2}, {0, 1}})
	x.paused(1, true)
	x.links(map[[2]int]bool{}) // heal
	x.paused(1, false)
	x.cutLinks([][2]int{{0, 1}, {0, 2}})
	x.slowed(2, true)
	x.slowed(-1, false) // heal
	var kinds []string
	for _, e := range x.spans() {
		kinds = append(kinds, nodeName([]string{"n1", "n2", "n3"}, e.Node)+" "+e.Kind)
		if e.To < e.From {
			t.Errorf("span %+v ends before it starts", e)
		}
	}
	slices.Sort(kinds)
	if want := []string{"n1 isolated", "n2 paused", "n3 isolated", "n3 slowed"}; !slices.Equal(kinds, want) {
		t.Errorf("spans %q, want %q", kinds, want)
	}
}

// Uploads that failed without failing a round (a flusher that ignores
// upload errors) are their own finding.
func TestEffectsOf_putsFailedButNoRound(t *testing.T) {
	w := []nemesis.Window{{Name: "s3-errors", What: "errors: object store answers HTTP 503", Start: time.Second, End: 2 * time.Second}}
	put := metricPutErrors + `{kind="segment"}`
	samp := func(at time.Duration, puts float64) sample {
		return sample{At: at, S3Injected: -1, S3Resets: -1, Nodes: nodes(map[string]float64{put: puts, metricFlushRounds: puts})}
	}
	got := effectsOf(w, []sample{samp(0, 0), samp(3*time.Second, 4)}, nil, nil, []string{"n1"})
	if got[0].NoEffect != "no flush round failed, though object-store PUTs did" || got[0].PutErrors["segment"] != 4 {
		t.Errorf("effect = %+v", got[0])
	}
	if !strings.Contains(got[0].Summary, "failed PUTs: segment 4, log 0") {
		t.Errorf("summary %q lacks the failed PUTs", got[0].Summary)
	}
}

// slow-leader: a read the slowed leader answered while its peer links were
// delayed is counted as such, and a window with no new leader is a finding.
func TestEffectsOf_slowLeader(t *testing.T) {
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	w := []nemesis.Window{{Name: "slow-leader", What: "delay leader n1's peer links 500ms +- 50ms", Start: sec(1), End: sec(3)}}
	samp := func(at time.Duration) sample {
		return sample{At: at, S3Injected: -1, S3Resets: -1, Nodes: nodes(
			map[string]float64{metricRaftState: raftStateLeader, metricRaftTerm: 4}, map[string]float64{metricRaftTerm: 4})}
	}
	spans := []exposure{{Node: 0, Kind: "slowed", From: sec(1), To: sec(3)}}
	ops := []history.Op{
		{Process: 1, Type: history.Invoke, F: "read", Node: 0, Time: sec(1.5)},
		{Process: 1, Type: history.OK, F: "read", Node: 0, Time: sec(2)},
	}
	got := effectsOf(w, []sample{samp(0), samp(4 * time.Second)}, spans, ops, []string{"n1", "n2"})[0]
	if got.ReadsFromSlowed != 1 || got.ReadsFromIsolated != 0 || got.NoEffect != "no leadership change" {
		t.Errorf("effect = %+v", got)
	}
	if !strings.Contains(got.Summary, "by a slowed node 1 (n1 slowed)") {
		t.Errorf("summary %q lacks the slowed node's reads", got.Summary)
	}
}
