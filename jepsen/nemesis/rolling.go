package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// rollingRestartNodeTimeout bounds one node's graceful restart (transfer,
// SIGTERM, start, ready, caught up).
const rollingRestartNodeTimeout = 2 * time.Minute

// rollingRestartFault restarts every node once, one at a time, in a seeded
// order, the way an operator rolls an upgrade through the cluster
// (Cluster.GracefulRestart: leadership transferred off the node if it
// leads, SIGTERM, start, wait for /readyz and catch-up), while the
// workload runs. The window lasts until the roll is done: stop waits for
// it, so the cluster is whole again at every window's end.
func rollingRestartFault(rng *rand.Rand) fault {
	stopped := make(chan struct{})
	var errs []error
	return fault{start: func(_ context.Context, c Cluster) (string, error) {
		order := rng.Perm(c.N())
		names := make([]string, len(order))
		for k, i := range order {
			names[k] = fmt.Sprintf("n%d", i+1)
		}
		go func() {
			defer close(stopped)
			for _, i := range order {
				// Not the run's context: a roll cut short would leave a
				// node down, which is another nemesis (kill).
				ctx, cancel := context.WithTimeout(context.Background(), rollingRestartNodeTimeout)
				if err := c.GracefulRestart(ctx, i); err != nil {
					errs = append(errs, err)
				}
				cancel()
			}
		}()
		return "rolling restart " + strings.Join(names, ", ") + " (each: transfer leadership off, SIGTERM, start, wait for /readyz and catch-up)", nil
	}, stop: func(context.Context, Cluster) error {
		<-stopped
		return joinErrs(errs)
	}}
}
