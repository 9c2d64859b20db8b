package harness

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/objstore"
)

// OpenObjectStore opens the object store at its real address, bypassing
// the proxy and every fault on it, for whoever acts on the bucket as an
// operator (or another writer) would: the quarantine nemesis plants and
// removes objects with it. The caller closes the store.
func (c *Cluster) OpenObjectStore(ctx context.Context) (objstore.Store, error) {
	if c.s3Addr == "" {
		return nil, ErrNoObjectStore
	}
	s, err := objstore.Open(ctx, c.DirectObjectStoreURL())
	if err != nil {
		return nil, fmt.Errorf("open object store: %w", err)
	}
	return s, nil
}

// Quarantined returns the volumes node i's own state lists as quarantined
// (ClusterService.Status, local, at its real address; bounded by
// Config.RequestTimeout).
func (c *Cluster) Quarantined(ctx context.Context, i int) ([]*graftv1.QuarantinedVolume, error) {
	n, err := c.node(i)
	if err != nil {
		return nil, err
	}
	if !n.current().alive() {
		return nil, fmt.Errorf("status of %s: %w", n.id, ErrNotRunning)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	resp, err := n.cluster.Status(ctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", n.id, err)
	}
	return resp.Msg.GetQuarantined(), nil
}

// Unquarantine lifts a volume's quarantine on the leader, as `graft
// cluster unquarantine VID` does; an answer lost with a leader change is
// retried on the new leader (a retry of a call that took effect answers
// failed_precondition: not quarantined).
func (c *Cluster) Unquarantine(ctx context.Context, vid string) error {
	return c.onLeader(ctx, "unquarantine "+vid, func(ctx context.Context, leader *node) error {
		_, err := leader.cluster.Unquarantine(ctx, connect.NewRequest(&graftv1.UnquarantineRequest{Vid: vid}))
		return err
	})
}
