package cluster

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/tlsutil"
)

// forwardedHeader marks a request a follower forwarded to the leader; a
// node that receives one and is not the leader answers unavailable instead
// of forwarding again, so forwarding never loops.
const forwardedHeader = "Graft-Forwarded-By"

// forwarder holds Connect clients to peers. Every peer gets one HTTP/2
// connection (h2c, or TLS presenting this member's certificate), so
// concurrent forwarded commits are multiplexed rather than each paying for
// a connection. Every call carries the credential of the request it is
// made for (auth.ForwardCredential): the peer checks the caller's token
// again.
type forwarder struct {
	http    *http.Client
	scheme  string
	timeout time.Duration

	mu    sync.Mutex
	peers map[string]*peerClient
}

type peerClient struct {
	volume  graftv1connect.VolumeServiceClient
	cluster graftv1connect.ClusterServiceClient
}

// noGzip turns compression off between nodes: pages are mostly
// incompressible and gzip costs CPU on the commit path.
var noGzip = connect.WithAcceptCompression("gzip", nil, nil)

func newForwarder(timeout time.Duration, h *tlsutil.Holder) *forwarder {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	tr.Protocols = new(http.Protocols)
	scheme := "http://"
	if h != nil {
		tr.DialTLSContext = h.DialTLSContext
		tr.ForceAttemptHTTP2 = true
		tr.Protocols.SetHTTP2(true)
		scheme = "https://"
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &forwarder{
		http:    &http.Client{Transport: tr},
		scheme:  scheme,
		timeout: timeout,
		peers:   map[string]*peerClient{},
	}
}

func (f *forwarder) peer(addr string) *peerClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.peers[addr]; ok {
		return p
	}
	base := f.scheme + addr
	cred := connect.WithInterceptors(auth.ForwardCredential(""))
	p := &peerClient{
		volume:  graftv1connect.NewVolumeServiceClient(f.http, base, noGzip, cred),
		cluster: graftv1connect.NewClusterServiceClient(f.http, base, noGzip, cred),
	}
	f.peers[addr] = p
	return p
}

func (f *forwarder) close() {
	f.http.CloseIdleConnections()
}

// leaderAPI returns the leader's ID and client API address.
func (n *Node) leaderAPI() (string, string, error) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", "", ErrNoLeader
	}
	if string(id) == n.cfg.ID {
		return n.cfg.ID, n.apiAddr, nil
	}
	if d, ok := n.cfg.Dial[string(id)]; ok && d.APIAddr != "" {
		return string(id), d.APIAddr, nil
	}
	if ni, ok := n.fsm.Node(string(id)); ok && ni.APIAddr != "" {
		return ni.ID, ni.APIAddr, nil
	}
	for _, p := range n.cfg.Peers {
		if p.ID == string(id) {
			return p.ID, p.APIAddr, nil
		}
	}
	return "", "", fmt.Errorf("%w: leader %s has no known api address", ErrNoLeader, id)
}

// forwardCtx bounds a forwarded call when the caller set no deadline.
func (n *Node) forwardCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ForwardTimeout)
}

// forwardCommit sends a commit to the leader. A transport error is an
// unknown outcome: the leader may have committed it.
func (n *Node) forwardCommit(ctx context.Context, msg *graftv1.CommitRequest) (*graftv1.CommitResponse, error) {
	id, addr, err := n.leaderAPI()
	if err != nil {
		return nil, err
	}
	ctx, cancel := n.forwardCtx(ctx)
	defer cancel()
	req := connect.NewRequest(msg)
	req.Header().Set(forwardedHeader, n.cfg.ID)
	n.metrics.forwarded.Inc()
	resp, err := n.fwd.peer(addr).volume.Commit(ctx, req)
	if err != nil {
		return nil, forwardError(id, addr, err)
	}
	return resp.Msg, nil
}

// forwardReadIndex asks the leader for a read index.
func (n *Node) forwardReadIndex(ctx context.Context) (uint64, error) {
	id, addr, err := n.leaderAPI()
	if err != nil {
		return 0, err
	}
	if id == n.cfg.ID {
		return 0, ErrNotLeader // leadership is changing under us
	}
	ctx, cancel := n.forwardCtx(ctx)
	defer cancel()
	req := connect.NewRequest(&graftv1.ReadIndexRequest{})
	req.Header().Set(forwardedHeader, n.cfg.ID)
	resp, err := n.fwd.peer(addr).cluster.ReadIndex(ctx, req)
	if err != nil {
		return 0, forwardError(id, addr, err)
	}
	return resp.Msg.GetIndex(), nil
}

// forwardError keeps the leader's own Connect errors as they are and turns
// transport failures into unknown outcomes naming the leader.
func forwardError(id, addr string, err error) error {
	if ce, ok := err.(*connect.Error); ok && connect.IsWireError(ce) {
		return ce // the leader's own answer
	}
	return fmt.Errorf("%w: forward to leader %s at %s: %w", ErrUnknownOutcome, id, addr, err)
}
