package harness

import (
	"errors"
	"fmt"
	"time"
)

// SetOutboundDelay delays node i's peer links only: the Raft and API
// proxies carrying i's connections to every other node (both directions of
// those connections, as SetDelay does), by d plus up to jitter. The other
// nodes' connections to i, and every client link, are left as they are.
// Heal clears it.
func (c *Cluster) SetOutboundDelay(i int, d, jitter time.Duration) error {
	n, err := c.node(i)
	if err != nil {
		return fmt.Errorf("set outbound delay: %w", err)
	}
	var errs []error
	for j := range c.nodes {
		if j == i {
			continue
		}
		errs = append(errs, c.raftProxy[i][j].SetDelay(d, jitter), c.apiProxy[i][j].SetDelay(d, jitter))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set outbound delay of %s: %w", n.id, err)
	}
	c.log.Info("nemesis: outbound peer delay", "node", n.id, "delay", d, "jitter", jitter)
	return nil
}
