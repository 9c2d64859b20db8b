package cluster

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/fsm"
)

// DeleteVolume deletes a volume through Raft (a tombstone, fsm entry kind
// 16): from the moment it is applied, the volume's commits and reads answer
// not_found on every node, its buffered commits are dropped, and the
// leader's garbage collection removes its objects after the GC grace
// period. Followers forward to the leader.
func (s *volumeService) DeleteVolume(ctx context.Context, req *connect.Request[graftv1.DeleteVolumeRequest]) (*connect.Response[graftv1.DeleteVolumeResponse], error) {
	vid, err := parseVID(req.Msg.GetVid())
	if err != nil {
		return nil, err
	}
	if !s.n.IsLeader() {
		if req.Header().Get(forwardedHeader) != "" {
			return nil, toConnect(s.n.log, ErrNotLeader)
		}
		id, addr, err := s.n.leaderAPI()
		if err != nil {
			return nil, toConnect(s.n.log, err)
		}
		fctx, cancel := s.n.forwardCtx(ctx)
		defer cancel()
		s.n.metrics.forwarded.Inc()
		resp, err := s.n.fwd.peer(addr).volume.DeleteVolume(fctx, forwarded(req, s.n.cfg.ID))
		if err != nil {
			return nil, toConnect(s.n.log, forwardError(id, addr, err))
		}
		return resp, nil
	}
	if err := s.n.fsm.WaitRecovered(ctx); err != nil {
		return nil, toConnect(s.n.log, fmt.Errorf("%w: %w", ErrStoreNotReady, err))
	}
	resp, err := s.n.apply(ctx, fsm.EncodeTombstone(fsm.Tombstone{VID: vid, TimeUnixMs: time.Now().UnixMilli()}))
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if res, ok := resp.(*fsm.AdminResult); !ok || res.Err != nil {
		return nil, toConnect(s.n.log, fmt.Errorf("delete volume %s: %v", vid, resp))
	}
	s.n.log.Warn("volume deleted", "vid", vid)
	return connect.NewResponse(&graftv1.DeleteVolumeResponse{}), nil
}
