package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/volume"
)

// maxChangedInline is the largest graft also listed in PullGraftResponse.changed.
const maxChangedInline = 1024

// volumeService serves graft.v1.VolumeService on a node.
type volumeService struct {
	n *Node
}

var _ graftv1connect.VolumeServiceHandler = (*volumeService)(nil)

func parseVID(s string) (volume.ID, error) {
	vid, err := volume.ParseRequestID(s)
	if err != nil {
		return volume.ID{}, invalidArgument("%w", err)
	}
	return vid, nil
}

// Commit validates a commit, then runs it on the leader (forwarding when
// this node is a follower).
func (s *volumeService) Commit(ctx context.Context, req *connect.Request[graftv1.CommitRequest]) (*connect.Response[graftv1.CommitResponse], error) {
	start := time.Now()
	resp, outcome, err := s.commit(ctx, req)
	s.n.metrics.observeCommit(outcome, time.Since(start))
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (s *volumeService) commit(ctx context.Context, req *connect.Request[graftv1.CommitRequest]) (*graftv1.CommitResponse, string, error) {
	m := req.Msg
	lim := s.n.cfg.Limits
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return nil, outcomeInvalid, err
	}
	if lim.MaxRequestBytes > 0 {
		if size := proto.Size(m); size > lim.MaxRequestBytes {
			return nil, outcomeInvalid, invalidArgument("request is %d bytes, limit %d (max request bytes); split the commit", size, lim.MaxRequestBytes)
		}
	}
	pages := make([]volume.PageWrite, len(m.GetPages()))
	for i, p := range m.GetPages() {
		pages[i] = volume.PageWrite{Idx: volume.PageIdx(p.GetIdx()), Data: p.GetData()}
	}
	sorted, err := volume.ValidateCommit(m.GetPageCount(), pages, volume.Limits{MaxPages: lim.MaxPagesPerCommit})
	if err != nil {
		return nil, outcomeInvalid, invalidArgument("%w", err)
	}
	if !s.n.IsLeader() {
		if by := req.Header().Get(forwardedHeader); by != "" {
			return nil, outcomeUnavailable, ErrNotLeader
		}
		resp, err := s.n.forwardCommit(ctx, m)
		if err != nil {
			return nil, outcomeOf(err), err
		}
		return resp, outcomeForwarded, nil
	}
	res, err := s.n.commitLocal(ctx, commitArgs{vid: vid, base: volume.LSN(m.GetBaseLsn()), pageCount: m.GetPageCount(), pages: sorted})
	if err != nil {
		return nil, outcomeOf(err), err
	}
	outcome := outcomeOK
	if res.Duplicate {
		outcome = outcomeDuplicate
	}
	return &graftv1.CommitResponse{Snapshot: snapshotProto(res.Snapshot), Hash: res.Hash[:]}, outcome, nil
}

// GetSnapshot returns a snapshot of a volume at the requested consistency.
func (s *volumeService) GetSnapshot(ctx context.Context, req *connect.Request[graftv1.GetSnapshotRequest]) (*connect.Response[graftv1.GetSnapshotResponse], error) {
	m := req.Msg
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.n.readCtx(ctx)
	defer cancel()
	if err := s.n.readBarrier(ctx, m.GetConsistency(), vid, m.GetMinLsn()); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	snap, err := s.n.snapshotAt(ctx, vid, volume.LSN(m.GetLsn()))
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	return connect.NewResponse(&graftv1.GetSnapshotResponse{Snapshot: snapshotProto(snap)}), nil
}

// PullGraft returns the pages changed in (since, until].
func (s *volumeService) PullGraft(ctx context.Context, req *connect.Request[graftv1.PullGraftRequest]) (*connect.Response[graftv1.PullGraftResponse], error) {
	m := req.Msg
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return nil, err
	}
	if err := volume.CheckRange(m.GetSinceLsn(), m.GetUntilLsn()); err != nil {
		return nil, invalidArgument("%w", err)
	}
	ctx, cancel := s.n.readCtx(ctx)
	defer cancel()
	if err := s.n.readBarrier(ctx, m.GetConsistency(), vid, m.GetMinLsn()); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	snap, set, err := s.n.graft(ctx, vid, volume.LSN(m.GetSinceLsn()), volume.LSN(m.GetUntilLsn()))
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	if m.GetSinceLsn() > uint64(snap.LSN) {
		return nil, toConnect(s.n.log, invalidArgument("since_lsn %d is past the head %d", m.GetSinceLsn(), snap.LSN))
	}
	b, err := set.MarshalBinary()
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	out := &graftv1.PullGraftResponse{Snapshot: snapshotProto(snap), Graft: b}
	if set.Len() <= maxChangedInline {
		for _, idx := range set.Slice() {
			out.Changed = append(out.Changed, uint32(idx))
		}
	}
	return connect.NewResponse(out), nil
}

// PullCommits returns commit metadata in (since, until].
func (s *volumeService) PullCommits(ctx context.Context, req *connect.Request[graftv1.PullCommitsRequest]) (*connect.Response[graftv1.PullCommitsResponse], error) {
	m := req.Msg
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return nil, err
	}
	if err := volume.CheckRange(m.GetSinceLsn(), m.GetUntilLsn()); err != nil {
		return nil, invalidArgument("%w", err)
	}
	limit := s.n.cfg.Limits.MaxCommitsPerPull
	if l := int(m.GetLimit()); l > 0 && (limit <= 0 || l < limit) {
		limit = l
	}
	ctx, cancel := s.n.readCtx(ctx)
	defer cancel()
	if err := s.n.readBarrier(ctx, m.GetConsistency(), vid, m.GetMinLsn()); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	snap, commits, more, err := s.n.commits(ctx, vid, volume.LSN(m.GetSinceLsn()), volume.LSN(m.GetUntilLsn()), limit)
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	out := &graftv1.PullCommitsResponse{Snapshot: snapshotProto(snap), More: more}
	for _, c := range commits {
		g, err := c.Graft.MarshalBinary()
		if err != nil {
			return nil, toConnect(s.n.log, err)
		}
		out.Commits = append(out.Commits, &graftv1.CommitInfo{
			Lsn: uint64(c.LSN), PageCount: c.PageCount, Hash: c.Hash[:], Graft: g, CommitTimeUnixMs: c.TimeUnixMs,
		})
	}
	return connect.NewResponse(out), nil
}

// ReadPages returns pages as of a snapshot, each with the LSN of the
// version served. A read at a fixed LSN never changes, so its response is
// marked immutable for HTTP caches.
func (s *volumeService) ReadPages(ctx context.Context, req *connect.Request[graftv1.ReadPagesRequest]) (*connect.Response[graftv1.ReadPagesResponse], error) {
	m := req.Msg
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return nil, err
	}
	idxs, err := volume.ParseReadIndexes(m.GetPages(), s.n.cfg.Limits.MaxPagesPerRead)
	if err != nil {
		return nil, invalidArgument("%w", err)
	}
	ctx, cancel := s.n.readCtx(ctx)
	defer cancel()
	if err := s.n.readBarrier(ctx, m.GetConsistency(), vid, m.GetMinLsn()); err != nil {
		return nil, toConnect(s.n.log, err)
	}
	snap, vers, err := s.n.readPages(ctx, vid, volume.LSN(m.GetLsn()), idxs)
	if err != nil {
		return nil, toConnect(s.n.log, err)
	}
	out := &graftv1.ReadPagesResponse{Snapshot: snapshotProto(snap), Pages: make([]*graftv1.Page, len(vers))}
	for i, v := range vers {
		data := v.Data
		if data == nil {
			data = volume.ZeroPage()
		}
		out.Pages[i] = &graftv1.Page{Idx: uint32(v.Idx), Data: data, Lsn: uint64(v.LSN)}
	}
	resp := connect.NewResponse(out)
	if m.GetLsn() != 0 {
		// Private with tokens on: a shared cache must not serve the pages
		// to callers without one (RFC 9111 section 3.5).
		cc := "public, max-age=31536000, immutable"
		if s.n.cfg.Auth != nil {
			cc = "private, max-age=31536000, immutable"
		}
		resp.Header().Set("Cache-Control", cc)
	}
	return resp, nil
}

// WatchVolume streams the volume's head: the current head at once (which
// also flushes the response headers, so the client's call returns), then
// one message each time the head advances on this node. On a new cluster
// the first message waits for recovery from the object store, so a volume
// the bucket holds is never reported at head 0; a volume recovery
// quarantined (no head) ends the stream with failed_precondition, as its
// reads do. A closing node ends the stream with unavailable.
func (s *volumeService) WatchVolume(ctx context.Context, req *connect.Request[graftv1.WatchVolumeRequest], stream *connect.ServerStream[graftv1.WatchVolumeResponse]) error {
	vid, err := parseVID(req.Msg.GetVid())
	if err != nil {
		return err
	}
	ctx, done := s.n.streamCtx(ctx)
	defer done()
	if err := s.n.waitRecovered(ctx); err != nil {
		if errors.Is(context.Cause(ctx), ErrClosed) {
			return toConnect(s.n.log, ErrClosed)
		}
		return toConnect(s.n.log, fmt.Errorf("%w: the cluster is still recovering volumes from the object store: %w", ErrNoLeader, err))
	}
	// A volume quarantined before its head was known has no head to
	// report: the stream fails as reads do.
	head, err := s.n.waitHead(ctx, vid, 0)
	if err != nil {
		return toConnect(s.n.log, err)
	}
	if err := stream.Send(&graftv1.WatchVolumeResponse{Snapshot: snapshotProto(head)}); err != nil {
		return err
	}
	since := max(head.LSN, volume.LSN(req.Msg.GetSinceLsn()))
	for {
		head, err := s.n.waitHead(ctx, vid, since+1)
		if err != nil {
			switch {
			case errors.Is(context.Cause(ctx), ErrClosed):
				return toConnect(s.n.log, ErrClosed) // unavailable: watch another node
			case ctx.Err() != nil:
				return nil // the client went away or its deadline passed
			}
			return toConnect(s.n.log, err)
		}
		if err := stream.Send(&graftv1.WatchVolumeResponse{Snapshot: snapshotProto(head)}); err != nil {
			return err
		}
		since = head.LSN
	}
}

// waitRecovered waits until the cluster has recovered its volumes from
// the object store (only a new cluster's first moments).
func (n *Node) waitRecovered(ctx context.Context) error {
	if n.fsm.Recovered() {
		return nil
	}
	runHook(n.hook().recoveryWait)
	return n.fsm.WaitRecovered(ctx)
}

// waitHead waits until the volume's head on this node reaches lsn and
// returns it. A volume quarantined before its head was known (by recovery,
// or by orphan collection finding a log the state does not hold) has no
// head that could get there: waitHead fails at once, and whenever that
// happens while it waits, with the *fsm.QuarantineError reads get
// (failed_precondition naming the object).
func (n *Node) waitHead(ctx context.Context, vid volume.ID, lsn volume.LSN) (volume.Snapshot, error) {
	for {
		changed := n.fsm.Changed() // before the read: a change after it wakes us
		head, err := n.fsm.SnapshotAt(vid, 0)
		if err != nil {
			return volume.Snapshot{}, err
		}
		if head.LSN >= lsn {
			return head, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return volume.Snapshot{}, ctx.Err()
		}
	}
}

// readCtx bounds a read that has no deadline by MaxReadWait.
func (n *Node) readCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || n.cfg.Limits.MaxReadWait <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.Limits.MaxReadWait)
}

// readBarrier makes the local state fresh enough for the consistency level.
// Every level first waits for recovery from the object store (only a new
// cluster's first moments), so no read reports a recovered volume as empty.
func (n *Node) readBarrier(ctx context.Context, c graftv1.Consistency, vid volume.ID, minLSN uint64) error {
	if err := n.waitRecovered(ctx); err != nil {
		return fmt.Errorf("%w: the cluster is still recovering volumes from the object store: %w", ErrNoLeader, err)
	}
	switch c {
	case graftv1.Consistency_CONSISTENCY_UNSPECIFIED, graftv1.Consistency_CONSISTENCY_LINEARIZABLE:
		if plantedSkipReadIndex && n.IsLeader() {
			return nil // planted bug: local state, no quorum check
		}
		idx, err := n.readIndex(ctx)
		if err != nil {
			return err
		}
		return n.waitApplied(ctx, idx)
	case graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN:
		if minLSN == 0 {
			return nil
		}
		_, err := n.waitHead(ctx, vid, volume.LSN(minLSN))
		return err
	case graftv1.Consistency_CONSISTENCY_STALE:
		return nil
	default:
		return invalidArgument("unknown consistency %d", c)
	}
}

// outcome labels for the commit metrics.
const (
	outcomeOK          = "ok"
	outcomeDuplicate   = "duplicate"
	outcomeForwarded   = "forwarded"
	outcomeStale       = "stale"
	outcomeFull        = "buffer_full"
	outcomeInvalid     = "invalid"
	outcomeUnavailable = "unavailable"
	outcomeUnknown     = "unknown"
	outcomeError       = "error"
)

func outcomeOf(err error) string {
	ce := toConnectCode(err)
	switch ce {
	case connect.CodeAborted:
		return outcomeStale
	case connect.CodeResourceExhausted:
		return outcomeFull
	case connect.CodeInvalidArgument:
		return outcomeInvalid
	case connect.CodeUnavailable:
		return outcomeUnavailable
	case connect.CodeDeadlineExceeded, connect.CodeCanceled:
		return outcomeUnknown
	default:
		return outcomeError
	}
}

// toConnectCode classifies err the way toConnect would, without logging.
func toConnectCode(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(toConnect(discardLogger, err))
}
