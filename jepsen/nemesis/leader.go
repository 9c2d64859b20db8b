package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Nemeses aimed at a deposed leader: the window in which an old leader
// still believes it leads while another node has been elected and has
// committed writes. A read path that answers linearizable reads from local
// state on "I am leader" without a quorum check (ReadIndex + VerifyLeader)
// returns stale data only inside that window. partition-leader never opens
// it: hashicorp/raft's leader lease (250ms) is shorter than the followers'
// election timeout, so the isolated leader steps down before anyone else
// is elected.

// pauseLeaderFault SIGSTOPs the current leader, holds it long enough for
// the others to elect a new leader and commit, and for the clients pinned
// to the old leader to give up their first operation and invoke new ones
// (which then sit in its sockets), then SIGCONTs it; repeatedly until the
// fault window ends. The pause is 1.25..1.75 operation timeouts: every
// client operation pending on the old leader at SIGCONT was invoked after
// the new leader's first writes were acknowledged, so a stale answer to it
// is a linearizability violation, and its client is still waiting for the
// answer. On SIGCONT the old leader's HTTP handlers race its Raft
// goroutines (lease check, the new leader's heartbeat with a higher term):
// a correct read path refuses (VerifyLeader fails), a broken one answers
// from local state.
func pauseLeaderFault(rng *rand.Rand, opTimeout time.Duration) fault {
	if opTimeout <= 0 {
		opTimeout = 2 * time.Second
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	return fault{start: func(ctx context.Context, c Cluster) (string, error) {
		// Draw the durations up front, so the schedule of later faults
		// does not depend on how many cycles this one ran.
		var pauses [8]time.Duration
		var settles [8]time.Duration
		for k := range pauses {
			pauses[k] = opTimeout*5/4 + time.Duration(rng.Int64N(int64(opTimeout/2)))
			settles[k] = 500*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second)))
		}
		l, err := c.Leader(ctx)
		if err != nil {
			close(stopped)
			return "", err
		}
		what := fmt.Sprintf("SIGSTOP the leader (n%d first) for %s-%s, SIGCONT, repeat", l+1,
			(opTimeout * 5 / 4).Round(time.Millisecond), (opTimeout * 7 / 4).Round(time.Millisecond))
		go func() {
			defer close(stopped)
			for k := 0; ; k++ {
				if err := c.Pause(l); err != nil {
					return
				}
				t := time.NewTimer(pauses[k%len(pauses)])
				select {
				case <-done:
				case <-t.C:
				}
				t.Stop()
				_ = c.Resume(l)
				select {
				case <-done:
					return
				case <-time.After(settles[k%len(settles)]):
				}
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				l, err = c.Leader(lctx)
				cancel()
				if err != nil {
					return
				}
			}
		}()
		return what, nil
	}, stop: func(context.Context, Cluster) error {
		close(done)
		<-stopped
		return nil
	}}
}

// slowLeaderFault delays the current leader's outbound peer links (its
// Raft and forwarding connections to the other nodes, both directions of
// those connections) by 500ms..1s, so its heartbeats arrive too late and
// the others elect a new leader, while its client links stay fast: clients
// keep reaching the old leader with no delay. Healing clears the delay.
func slowLeaderFault(rng *rand.Rand) fault {
	d := 500*time.Millisecond + time.Duration(rng.Int64N(int64(500*time.Millisecond)))
	return fault{start: func(ctx context.Context, c Cluster) (string, error) {
		l, err := c.Leader(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("delay leader n%d's peer links %s +- %s", l+1, d, d/10), c.SetOutboundDelay(l, d, d/10)
	}, stop: func(_ context.Context, c Cluster) error { return c.Heal() }}
}
