package edge

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
)

// tokenRevoked reports whether the cluster's revocation list, as last
// read, holds id.
func (e *Edge) tokenRevoked(id string) bool {
	m := e.revoked.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[id]
	return ok
}

// refreshRevocations re-reads the cluster's revocation list every
// RevocationRefresh until Close, so a token revoked on the cluster is
// refused here within that period even on cache hits (calls that reach
// the cluster are refused there at once).
func (e *Edge) refreshRevocations() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.RevocationRefresh)
	defer t.Stop()
	failing := false
	for {
		err := e.loadRevocations(e.ctx)
		switch {
		case err != nil && !failing && e.ctx.Err() == nil:
			e.log.Warn("cannot read the cluster's token revocation list; keeping the last one", "err", err)
			failing = true
		case err == nil && failing:
			e.log.Info("token revocation list read again")
			failing = false
		}
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Edge) loadRevocations(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.UpstreamAttemptTimeout)
	defer cancel()
	var firstErr error
	for i := range e.up.Endpoints() {
		resp, err := e.up.Cluster(i).ListRevokedTokens(ctx, connect.NewRequest(&graftv1.ListRevokedTokensRequest{}))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		m := make(map[string]struct{}, len(resp.Msg.GetIds()))
		for _, id := range resp.Msg.GetIds() {
			m[id] = struct{}{}
		}
		e.revoked.Store(&m)
		return nil
	}
	return firstErr
}

// upstreamReady asks an upstream node's /readyz (which needs no token).
func (e *Edge) upstreamReady(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := e.up.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/readyz: %s", endpoint, resp.Status)
	}
	return nil
}
