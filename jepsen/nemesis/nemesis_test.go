package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster records the calls a fault makes. leader is the index Leader
// returns; removeErr is what RemoveAndReadd returns.
type fakeCluster struct {
	mu        sync.Mutex
	calls     []string
	leader    int
	removeErr error
	paused    map[int]bool
	changed   chan struct{} // gets a value after every call
}

func newFake(leader int) *fakeCluster {
	return &fakeCluster{leader: leader, paused: map[int]bool{}, changed: make(chan struct{}, 64)}
}

func (f *fakeCluster) record(format string, args ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeCluster) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCluster) N() int { return 3 }
func (f *fakeCluster) Leader(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader, nil
}
func (f *fakeCluster) Partition(g [][]int) error { f.record("partition %v", g); return nil }
func (f *fakeCluster) CutLinks(p [][2]int) error { f.record("cut %v", p); return nil }
func (f *fakeCluster) Heal() error               { f.record("heal"); return nil }
func (f *fakeCluster) SetLinkDelay(d, j time.Duration) error {
	f.record("delay all %s %s", d, j)
	return nil
}
func (f *fakeCluster) SetOutboundDelay(i int, d, j time.Duration) error {
	f.record("delay out %d %s %s", i, d, j)
	return nil
}
func (f *fakeCluster) Kill(i int) error    { f.record("kill %d", i); return nil }
func (f *fakeCluster) Restart(i int) error { f.record("restart %d", i); return nil }
func (f *fakeCluster) Pause(i int) error {
	f.mu.Lock()
	f.paused[i] = true
	f.mu.Unlock()
	f.record("pause %d", i)
	return nil
}
func (f *fakeCluster) Resume(i int) error {
	f.mu.Lock()
	f.paused[i] = false
	f.mu.Unlock()
	f.record("resume %d", i)
	return nil
}
func (f *fakeCluster) TransferLeadership(context.Context) error { f.record("transfer"); return nil }
func (f *fakeCluster) RemoveAndReadd(_ context.Context, i int) error {
	f.record("remove-readd %d", i)
	return f.removeErr
}
func (f *fakeCluster) Rejoin(context.Context) error { f.record("rejoin"); return nil }
func (f *fakeCluster) GracefulRestart(_ context.Context, i int) error {
	f.record("graceful restart %d", i)
	return nil
}
func (f *fakeCluster) S3Down(down bool) error        { f.record("s3 down %v", down); return nil }
func (f *fakeCluster) S3Delay(d time.Duration) error { f.record("s3 delay %s", d); return nil }
func (f *fakeCluster) isPaused(i int) bool           { f.mu.Lock(); defer f.mu.Unlock(); return f.paused[i] }
func (f *fakeCluster) count(prefix string) (n int) {
	for _, c := range f.log() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// waitFor polls until cond holds, failing the test after a deadline.
func waitFor(t *testing.T, f *fakeCluster, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; calls: %v", what, f.log())
		}
	}
}

func TestParse_LeaderNemeses(t *testing.T) {
	got, err := Parse("pause-leader, slow-leader")
	if err != nil || !slices.Equal(got, []string{"pause-leader", "slow-leader"}) {
		t.Fatalf("Parse = %v, %v", got, err)
	}
}

// A membership step first makes sure every node is a member (Rejoin), and
// one whose RemoveAndReadd failed (cut short by the run's end) makes the
// node rejoin again when the fault stops; a step that succeeded does not.
func TestMembership_StopRejoinsAfterFailedStep(t *testing.T) {
	for _, tc := range []struct {
		name       string
		removeErr  error
		wantRejoin int
	}{
		{"failed step", context.DeadlineExceeded, 2},
		{"completed step", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFake(0)
			c.removeErr = tc.removeErr
			f := newFault("membership", rand.New(rand.NewPCG(1, 2)), 0)
			if _, err := f.start(context.Background(), c); !errors.Is(err, tc.removeErr) {
				t.Fatalf("start err = %v, want %v", err, tc.removeErr)
			}
			if err := f.stop(context.Background(), c); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if got := c.count("rejoin"); got != tc.wantRejoin {
				t.Fatalf("rejoin called %d times, want %d; calls %v", got, tc.wantRejoin, c.log())
			}
		})
	}
}

// pause-leader SIGSTOPs the leader for 1.25..1.75 operation timeouts, then
// SIGCONTs it and pauses whoever leads next; stop resumes a paused node at
// once.
func TestPauseLeader_PausesLeaderAndResumesOnStop(t *testing.T) {
	c := newFake(2)
	opTimeout := 40 * time.Millisecond
	f := newFault("pause-leader", rand.New(rand.NewPCG(1, 2)), opTimeout)
	start := time.Now()
	what, err := f.start(context.Background(), c)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if !strings.Contains(what, "n3") {
		t.Errorf("description %q does not name the leader n3", what)
	}
	waitFor(t, c, "pause of n3", func() bool { return c.count("pause 2") >= 1 })
	waitFor(t, c, "resume of n3", func() bool { return c.count("resume 2") >= 1 })
	if held := time.Since(start); held < opTimeout*5/4 {
		t.Errorf("leader resumed after %s, want at least %s", held, opTimeout*5/4)
	}
	c.mu.Lock()
	c.leader = 0
	c.mu.Unlock()
	waitFor(t, c, "pause of the next leader n1", func() bool { return c.count("pause 0") >= 1 })
	if err := f.stop(context.Background(), c); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for i := range 3 {
		if c.isPaused(i) {
			t.Errorf("node %d still paused after stop; calls %v", i, c.log())
		}
	}
}

// pause-leader's stop returns promptly even when a pause has just begun.
func TestPauseLeader_StopDuringPause(t *testing.T) {
	c := newFake(1)
	f := newFault("pause-leader", rand.New(rand.NewPCG(3, 4)), time.Hour)
	if _, err := f.start(context.Background(), c); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitFor(t, c, "pause of n2", func() bool { return c.isPaused(1) })
	done := make(chan error, 1)
	go func() { done <- f.stop(context.Background(), c) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return while the leader was paused")
	}
	if c.isPaused(1) {
		t.Fatal("n2 still paused after stop")
	}
}

// slow-leader delays only the leader's outbound peer links, by at least
// 500ms, and heals at stop.
func TestSlowLeader_DelaysLeaderOutboundOnly(t *testing.T) {
	c := newFake(1)
	f := newFault("slow-leader", rand.New(rand.NewPCG(5, 6)), 0)
	if _, err := f.start(context.Background(), c); err != nil {
		t.Fatalf("start: %v", err)
	}
	calls := c.log()
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "delay out 1 ") {
		t.Fatalf("calls = %v, want one outbound delay of node 1", calls)
	}
	d, err := time.ParseDuration(strings.Fields(strings.TrimPrefix(calls[0], "delay out 1 "))[0])
	if err != nil {
		t.Fatalf("parse delay of %q: %v", calls[0], err)
	}
	if d < 500*time.Millisecond || d >= time.Second {
		t.Errorf("delay %s, want in [500ms, 1s)", d)
	}
	if err := f.stop(context.Background(), c); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c.count("heal") != 1 {
		t.Errorf("stop did not heal; calls %v", c.log())
	}
}

// rolling-restart restarts every node once, one at a time, and its stop
// returns only once the roll is done.
func TestRollingRestart_EachNodeOnceThenStop(t *testing.T) {
	c := newFake(0)
	f := newFault("rolling-restart", rand.New(rand.NewPCG(7, 8)), 0)
	what, err := f.start(context.Background(), c)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := f.stop(context.Background(), c); err != nil {
		t.Fatalf("stop: %v", err)
	}
	calls := c.log()
	seen := map[string]bool{}
	for _, call := range calls {
		if !strings.HasPrefix(call, "graceful restart ") || seen[call] {
			t.Fatalf("calls = %v, want one graceful restart of each node", calls)
		}
		seen[call] = true
	}
	if len(seen) != 3 {
		t.Fatalf("calls = %v, want 3 graceful restarts", calls)
	}
	for i := range 3 {
		if !strings.Contains(what, fmt.Sprintf("n%d", i+1)) {
			t.Errorf("description %q does not name n%d", what, i+1)
		}
	}
}

// fakeEdges is a fakeCluster with two edges.
type fakeEdges struct{ *fakeCluster }

func (f fakeEdges) Edges() int              { return 2 }
func (f fakeEdges) KillEdge(i int) error    { f.record("kill edge %d", i); return nil }
func (f fakeEdges) RestartEdge(i int) error { f.record("restart edge %d", i); return nil }
func (f fakeEdges) PartitionEdge(i int, cut bool) error {
	f.record("partition edge %d %v", i, cut)
	return nil
}

// kill-edge kills an edge and restarts the same one; partition-edge cuts
// an edge and restores the same one; HealAll restores and restarts every
// edge. Without edges both refuse to start.
func TestEdgeNemeses(t *testing.T) {
	ctx := context.Background()
	f := fakeEdges{newFake(0)}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ name, start, stop string }{
		{"kill-edge", "kill edge", "restart edge"},
		{"partition-edge", "partition edge", "partition edge"},
	} {
		for range 4 {
			before := len(f.log())
			flt := newFault(tc.name, rng, time.Second)
			what, err := flt.start(ctx, f)
			if err != nil {
				t.Fatalf("%s start: %v", tc.name, err)
			}
			if err := flt.stop(ctx, f); err != nil {
				t.Fatalf("%s stop: %v", tc.name, err)
			}
			calls := f.log()[before:]
			var victim int
			if len(calls) != 2 || !strings.HasPrefix(calls[0], tc.start) || !strings.HasPrefix(calls[1], tc.stop) {
				t.Fatalf("%s (%s): calls %v", tc.name, what, calls)
			}
			fmt.Sscanf(strings.TrimPrefix(calls[0], tc.start), "%d", &victim)
			if !strings.HasPrefix(strings.TrimPrefix(calls[1], tc.stop), fmt.Sprintf(" %d", victim)) {
				t.Fatalf("%s: healed another edge: %v", tc.name, calls)
			}
			if tc.name == "partition-edge" && (!strings.HasSuffix(calls[0], "true") || !strings.HasSuffix(calls[1], "false")) {
				t.Fatalf("partition-edge: %v", calls)
			}
		}
	}
	before := len(f.log())
	HealAll(f, slog.New(slog.DiscardHandler))
	heal := strings.Join(f.log()[before:], ";")
	for _, want := range []string{"partition edge 0 false", "partition edge 1 false", "restart edge 0", "restart edge 1"} {
		if !strings.Contains(heal, want) {
			t.Errorf("HealAll: %s missing from %s", want, heal)
		}
	}
	for _, name := range []string{"kill-edge", "partition-edge"} {
		if _, err := newFault(name, rng, time.Second).start(ctx, newFake(0)); !errors.Is(err, ErrNoEdges) {
			t.Errorf("%s without edges: %v, want ErrNoEdges", name, err)
		}
	}
}

// flushingFake is a fakeCluster that can flush (nemesis.Flusher).
type flushingFake struct{ *fakeCluster }

func (f flushingFake) Flush(context.Context) error { f.record("flush"); return nil }

// The gc nemesis flushes at its window's start and end, and fails to start
// on a cluster that cannot flush.
func TestGC_FlushesAtStartAndStop(t *testing.T) {
	c := flushingFake{newFake(0)}
	f := newFault("gc", rand.New(rand.NewPCG(9, 10)), 0)
	if _, err := f.start(t.Context(), c); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := f.stop(t.Context(), c); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := c.log(); !slices.Equal(got, []string{"flush", "flush"}) {
		t.Fatalf("calls %q, want two flushes", got)
	}
	if _, err := f.start(t.Context(), newFake(0)); err == nil {
		t.Fatal("start on a cluster that cannot flush: no error")
	}
	if _, err := Parse("gc,kill-leader"); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}
