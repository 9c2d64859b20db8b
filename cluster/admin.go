package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
)

// clusterService serves graft.v1.ClusterService on a node.
type clusterService struct {
	n *Node
}

var _ graftv1connect.ClusterServiceHandler = (*clusterService)(nil)

// localStatus describes this node as it sees itself.
func (n *Node) localStatus() *graftv1.NodeStatus {
	storeErr := ""
	if err := n.storeError(); err != nil {
		storeErr = strings.ToValidUTF8(err.Error(), "?")
	}
	return &graftv1.NodeStatus{
		ObjectStoreError: storeErr,
		Id:               n.cfg.ID,
		ApiAddr:          n.apiAddr,
		RaftAddr:         n.raftAddr,
		State:            strings.ToLower(n.raft.State().String()),
		AppliedIndex:     n.fsm.Applied(),
		CommitIndex:      n.raft.CommitIndex(),
		LastLogIndex:     n.raft.LastIndex(),
		Term:             n.raft.CurrentTerm(),
	}
}

// Status reports the members of the Raft configuration. Unless local is
// set, each peer is asked for its own view (state, indexes) in parallel;
// a peer that does not answer within a second is reported unreachable.
func (s *clusterService) Status(ctx context.Context, req *connect.Request[graftv1.StatusRequest]) (*connect.Response[graftv1.StatusResponse], error) {
	n := s.n
	out := &graftv1.StatusResponse{LeaderId: n.Leader(), ClusterId: strings.ToValidUTF8(n.fsm.ClusterID(), "?")}
	for _, q := range n.fsm.Quarantined() {
		out.Quarantined = append(out.Quarantined, &graftv1.QuarantinedVolume{
			Vid: q.VID.String(), Key: strings.ToValidUTF8(q.Key, "?"), Reason: strings.ToValidUTF8(q.Reason, "?"), Index: q.Index,
		})
	}
	if req.Msg.GetLocal() {
		out.Nodes = []*graftv1.NodeStatus{n.localStatus()}
		return connect.NewResponse(out), nil
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, toConnect(n.log, fmt.Errorf("read raft configuration: %w", err))
	}
	servers := f.Configuration().Servers
	out.Nodes = make([]*graftv1.NodeStatus, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		id := string(srv.ID)
		suffrage := strings.ToLower(srv.Suffrage.String())
		if id == n.cfg.ID {
			st := n.localStatus()
			st.Suffrage = suffrage
			out.Nodes[i] = st
			continue
		}
		st := &graftv1.NodeStatus{Id: id, RaftAddr: string(srv.Address), Suffrage: suffrage, ApiAddr: n.apiAddrOf(id)}
		out.Nodes[i] = st
		if st.ApiAddr == "" {
			st.State, st.Error = "unreachable", "no known api address"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			resp, err := n.fwd.peer(st.ApiAddr).cluster.Status(cctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
			if err != nil || len(resp.Msg.GetNodes()) != 1 {
				st.State, st.Error = "unreachable", fmt.Sprint(err)
				return
			}
			peer := resp.Msg.GetNodes()[0]
			st.State, st.AppliedIndex, st.CommitIndex = peer.GetState(), peer.GetAppliedIndex(), peer.GetCommitIndex()
			st.LastLogIndex, st.Term = peer.GetLastLogIndex(), peer.GetTerm()
		}()
	}
	wg.Wait()
	return connect.NewResponse(out), nil
}

// apiAddrOf finds a member's client API address.
func (n *Node) apiAddrOf(id string) string {
	if d, ok := n.cfg.Dial[id]; ok && d.APIAddr != "" {
		return d.APIAddr
	}
	if ni, ok := n.fsm.Node(id); ok {
		return ni.APIAddr
	}
	for _, p := range n.cfg.Peers {
		if p.ID == id {
			return p.APIAddr
		}
	}
	return ""
}

// leaderCluster returns the leader's ClusterService client when this node
// is a follower and may forward, or nil when this node is the leader.
func (s *clusterService) leaderCluster(h connectHeader) (graftv1connect.ClusterServiceClient, error) {
	if s.n.IsLeader() {
		return nil, nil
	}
	if h.Get(forwardedHeader) != "" {
		return nil, ErrNotLeader
	}
	_, addr, err := s.n.leaderAPI()
	if err != nil {
		return nil, err
	}
	s.n.metrics.forwarded.Inc()
	return s.n.fwd.peer(addr).cluster, nil
}

type connectHeader interface{ Get(string) string }

func forwarded[T any](req *connect.Request[T], from string) *connect.Request[T] {
	out := connect.NewRequest(req.Msg)
	out.Header().Set(forwardedHeader, from)
	return out
}

// AddNode registers a new member's addresses and adds it to the Raft
// configuration, learner first: it joins as a nonvoter, and is promoted to
// voter only once its log has caught up with the leader's commit index at
// the time it joined. A node that joined as a voter straight away would
// count towards the quorum while it still replays the log (or installs a
// snapshot), so a second fault during that window (a member removed or
// killed) would leave the cluster without a working majority until the
// newcomer caught up. The consistency suite's membership nemesis found
// exactly that. A node that does not catch up before ctx ends stays a
// nonvoter (it never weakens the quorum); calling AddNode again resumes.
func (s *clusterService) AddNode(ctx context.Context, req *connect.Request[graftv1.AddNodeRequest]) (*connect.Response[graftv1.AddNodeResponse], error) {
	m := req.Msg
	if m.GetId() == "" || m.GetRaftAddr() == "" || m.GetApiAddr() == "" {
		return nil, invalidArgument("id, raft_addr and api_addr are all required")
	}
	lc, err := s.leaderCluster(req.Header())
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if lc != nil {
		return lc.AddNode(ctx, forwarded(req, s.n.cfg.ID))
	}
	ni := fsm.NodeInfo{ID: m.GetId(), RaftAddr: m.GetRaftAddr(), APIAddr: m.GetApiAddr()}
	if _, err := s.n.apply(ctx, fsm.EncodeRegister(ni)); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	id, addr := raft.ServerID(ni.ID), raft.ServerAddress(ni.RaftAddr)
	if srv, ok := s.n.member(ni.ID); !ok || srv.Address != addr || srv.Suffrage != raft.Voter {
		f := s.n.raft.AddNonvoter(id, addr, 0, timeoutFor(ctx, 10*time.Second))
		if err := waitFuture(ctx, f); err != nil {
			return nil, toConnect(s.n.log, raftAdminError("add nonvoter "+ni.ID, err))
		}
		s.n.log.Info("added nonvoter, waiting for it to catch up", "id", ni.ID, "raft_addr", ni.RaftAddr)
		if err := s.n.waitCaughtUp(ctx, ni.ID, s.n.raft.CommitIndex()); err != nil {
			return nil, toConnect(s.n.log, err)
		}
	}
	f := s.n.raft.AddVoter(id, addr, 0, timeoutFor(ctx, 10*time.Second))
	if err := waitFuture(ctx, f); err != nil {
		return nil, toConnect(s.n.log, raftAdminError("add voter "+ni.ID, err))
	}
	s.n.log.Info("added voter", "id", ni.ID, "raft_addr", ni.RaftAddr, "api_addr", ni.APIAddr)
	return connect.NewResponse(&graftv1.AddNodeResponse{}), nil
}

// member returns the server with this ID in the current configuration.
func (n *Node) member(id string) (raft.Server, bool) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return raft.Server{}, false
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return srv, true
		}
	}
	return raft.Server{}, false
}

// waitCaughtUp polls the member's own status until its last log index (a
// snapshot counts) reaches target. Raft does not expose a follower's match
// index, so the member is asked, through the same route forwarding uses.
func (n *Node) waitCaughtUp(ctx context.Context, id string, target uint64) error {
	var last uint64
	var lastErr error
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if addr := n.apiAddrOf(id); addr != "" {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := n.fwd.peer(addr).cluster.Status(cctx, connect.NewRequest(&graftv1.StatusRequest{Local: true}))
			cancel()
			if err == nil && len(resp.Msg.GetNodes()) == 1 {
				last, lastErr = resp.Msg.GetNodes()[0].GetLastLogIndex(), nil
				if last >= target {
					return nil
				}
			} else if err != nil {
				lastErr = err
			}
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("node %s joined as a nonvoter but has not caught up (log index %d of %d); it stays a nonvoter, retry AddNode to promote it", id, last, target)
			if lastErr != nil {
				msg += ": last status error: " + lastErr.Error()
			}
			return connect.NewError(connect.CodeDeadlineExceeded, errors.New(msg))
		case <-t.C:
		}
	}
}

// RemoveNode removes a member from the configuration and the directory.
func (s *clusterService) RemoveNode(ctx context.Context, req *connect.Request[graftv1.RemoveNodeRequest]) (*connect.Response[graftv1.RemoveNodeResponse], error) {
	id := req.Msg.GetId()
	if id == "" {
		return nil, invalidArgument("id is required")
	}
	lc, err := s.leaderCluster(req.Header())
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if lc != nil {
		return lc.RemoveNode(ctx, forwarded(req, s.n.cfg.ID))
	}
	if !s.n.isMember(id) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("node %s is not a member", id))
	}
	f := s.n.raft.RemoveServer(raft.ServerID(id), 0, timeoutFor(ctx, 10*time.Second))
	if err := waitFuture(ctx, f); err != nil {
		return nil, toConnect(s.n.log, raftAdminError("remove server "+id, err))
	}
	if id != s.n.cfg.ID {
		if _, err := s.n.apply(ctx, fsm.EncodeUnregister(id)); err != nil {
			s.n.log.Warn("unregister removed node", "id", id, "err", err)
		}
	}
	s.n.log.Info("removed member", "id", id)
	return connect.NewResponse(&graftv1.RemoveNodeResponse{}), nil
}

func (n *Node) isMember(id string) bool {
	_, ok := n.member(id)
	return ok
}

// TransferLeadership hands leadership to the named voter (or one Raft
// picks) and returns once a new leader is known.
func (s *clusterService) TransferLeadership(ctx context.Context, req *connect.Request[graftv1.TransferLeadershipRequest]) (*connect.Response[graftv1.TransferLeadershipResponse], error) {
	id := req.Msg.GetId()
	lc, err := s.leaderCluster(req.Header())
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if lc != nil {
		return lc.TransferLeadership(ctx, forwarded(req, s.n.cfg.ID))
	}
	if id == s.n.cfg.ID {
		return connect.NewResponse(&graftv1.TransferLeadershipResponse{LeaderId: id}), nil
	}
	s.n.flushBeforeLeaving(ctx)
	var f raft.Future
	if id == "" {
		f = s.n.raft.LeadershipTransfer()
	} else {
		var addr raft.ServerAddress
		conf := s.n.raft.GetConfiguration()
		if err := conf.Error(); err != nil {
			return nil, toConnect(s.n.log, err)
		}
		for _, srv := range conf.Configuration().Servers {
			if string(srv.ID) == id {
				addr = srv.Address
			}
		}
		if addr == "" {
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("node %s is not a member", id))
		}
		f = s.n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	if err := waitFuture(ctx, f); err != nil {
		return nil, toConnect(s.n.log, raftAdminError("transfer leadership", err))
	}
	// Wait until a leader is known again.
	for {
		if l := s.n.Leader(); l != "" && l != s.n.cfg.ID {
			return connect.NewResponse(&graftv1.TransferLeadershipResponse{LeaderId: l}), nil
		}
		select {
		case <-ctx.Done():
			return nil, toConnect(s.n.log, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Flush flushes everything acknowledged before the call to the object
// store and returns once it is durable there. The leader does the work,
// after making its state current (see Node.flushAll); followers forward.
func (s *clusterService) Flush(ctx context.Context, req *connect.Request[graftv1.FlushRequest]) (*connect.Response[graftv1.FlushResponse], error) {
	if s.n.flusher == nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("flush: this node has no object store configured (start it with --object-store)"))
	}
	lc, err := s.leaderCluster(req.Header())
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if lc != nil {
		return lc.Flush(ctx, forwarded(req, s.n.cfg.ID))
	}
	if err := s.n.flushAll(ctx); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	return connect.NewResponse(&graftv1.FlushResponse{}), nil
}

// Unquarantine lifts a volume's quarantine (after an operator fixed or
// removed the object it names). The leader does the work; followers
// forward. A volume quarantined by recovery is read from the bucket again;
// if its log still cannot be read, the quarantine stays and the error says
// why.
func (s *clusterService) Unquarantine(ctx context.Context, req *connect.Request[graftv1.UnquarantineRequest]) (*connect.Response[graftv1.UnquarantineResponse], error) {
	vid, err := parseVID(req.Msg.GetVid())
	if err != nil {
		return nil, err
	}
	lc, err := s.leaderCluster(req.Header())
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if lc != nil {
		return lc.Unquarantine(ctx, forwarded(req, s.n.cfg.ID))
	}
	q, _ := s.n.fsm.Quarantine(vid)
	if err := flusher.Unquarantine(ctx, s.n.fsm, s.n.objects, s.n.reader, proposer{s.n}, vid); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	s.n.log.Warn("quarantine lifted by an operator", "vid", vid, "key", q.Key, "reason", q.Reason)
	if s.n.flusher != nil {
		s.n.flusher.Kick()
	}
	return connect.NewResponse(&graftv1.UnquarantineResponse{}), nil
}

// ReadIndex serves followers' linearizable reads; only the leader answers.
func (s *clusterService) ReadIndex(ctx context.Context, req *connect.Request[graftv1.ReadIndexRequest]) (*connect.Response[graftv1.ReadIndexResponse], error) {
	if !s.n.IsLeader() {
		return nil, toConnect(s.n.log, ErrNotLeader)
	}
	idx, err := s.n.readIndex(ctx)
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	return connect.NewResponse(&graftv1.ReadIndexResponse{Index: idx}), nil
}

func raftAdminError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%s: %w: %w", op, ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s: %w", op, err))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", op, err)
	default:
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s: %w", op, err))
	}
}
