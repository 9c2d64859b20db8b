package cluster

import (
	"context"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/fsm"
)

// RevokeToken puts a token ID on the replicated revocation list (the
// leader proposes it; followers forward). Once it answers, the entry is
// committed: each node refuses the token from the moment it applies the
// entry (a follower within a heartbeat), and so does a restarted node
// (the list is in snapshots).
func (s *clusterService) RevokeToken(ctx context.Context, req *connect.Request[graftv1.RevokeTokenRequest]) (*connect.Response[graftv1.RevokeTokenResponse], error) {
	id := req.Msg.GetId()
	if id == "" || len(id) > 1024 {
		return nil, invalidArgument("id is required (at most 1024 bytes)")
	}
	if req.Msg.GetExpiresUnix() < 0 {
		return nil, invalidArgument("expires_unix must not be negative")
	}
	lc, err := s.leaderCluster(req.Header())
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if lc != nil {
		return lc.RevokeToken(ctx, forwarded(req, s.n.cfg.ID))
	}
	cmd := fsm.EncodeRevokeToken(fsm.RevokeToken{ID: id, ExpiresUnix: req.Msg.GetExpiresUnix(), TimeUnix: time.Now().Unix()})
	if _, err := s.n.apply(ctx, cmd); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	s.n.log.Warn("token revoked", "token_id", id, "expires_unix", req.Msg.GetExpiresUnix())
	return connect.NewResponse(&graftv1.RevokeTokenResponse{}), nil
}

// ListRevokedTokens returns this node's revocation list.
func (s *clusterService) ListRevokedTokens(ctx context.Context, req *connect.Request[graftv1.ListRevokedTokensRequest]) (*connect.Response[graftv1.ListRevokedTokensResponse], error) {
	return connect.NewResponse(&graftv1.ListRevokedTokensResponse{Ids: s.n.fsm.RevokedTokens()}), nil
}
