package edge

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/volume"
)

type volumeClient = graftv1connect.VolumeServiceClient

// service serves graft.v1.VolumeService on the edge.
type service struct {
	e *Edge
}

var _ graftv1connect.VolumeServiceHandler = (*service)(nil)

// Bad input is answered as the cluster answers it (cluster/service.go):
// same checks, same order, same code and message.

func invalidArgument(err error) *connect.Error {
	return connect.NewError(connect.CodeInvalidArgument, err)
}

func parseVID(s string) (volume.ID, error) {
	vid, err := volume.ParseRequestID(s)
	if err != nil {
		return volume.ID{}, invalidArgument(err)
	}
	return vid, nil
}

func checkConsistency(c graftv1.Consistency) error {
	switch c {
	case graftv1.Consistency_CONSISTENCY_UNSPECIFIED, graftv1.Consistency_CONSISTENCY_LINEARIZABLE,
		graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN, graftv1.Consistency_CONSISTENCY_STALE:
		return nil
	}
	return invalidArgument(fmt.Errorf("unknown consistency %d", c))
}

// Commit forwards a commit to the cluster (its leader, when known) and
// returns the cluster's answer unchanged. A retry after an unknown outcome
// resends the same content, which the cluster deduplicates.
func (s *service) Commit(ctx context.Context, req *connect.Request[graftv1.CommitRequest]) (*connect.Response[graftv1.CommitResponse], error) {
	if _, err := parseVID(req.Msg.GetVid()); err != nil {
		return nil, err
	}
	out, err := upstream(ctx, s, true, req.Msg, volumeClient.Commit)
	if err != nil {
		return nil, err
	}
	if snap, err := snapshotFrom(out.GetSnapshot()); err == nil && snap.VID.String() == req.Msg.GetVid() {
		s.e.noteHead(snap.VID, snap.LSN) // an acked commit's snapshot exists
	}
	return connect.NewResponse(out), nil
}

// upstream sends m to the cluster (the leader first if leader is set,
// with the client's retries) and returns the answer, or the cluster's
// error with its code, message and details (upstreamErr).
func upstream[Req, Resp any](ctx context.Context, s *service, leader bool, m *Req,
	call func(volumeClient, context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*Resp, error) {
	out, err := callUpstream(ctx, s.e, leader, m, call)
	if err != nil {
		return nil, upstreamErr(err)
	}
	return out, nil
}

// callUpstream makes one call to the cluster through the edge's client
// (leader preference, retries of unknown outcomes) and returns the answer
// or the upstream's error as is.
func callUpstream[Req, Resp any](ctx context.Context, e *Edge, leader bool, m *Req,
	call func(volumeClient, context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*Resp, error) {
	var out *Resp
	err := e.up.Do(ctx, leader, func(ctx context.Context, vol volumeClient) error {
		r, err := call(vol, ctx, connect.NewRequest(m))
		if err != nil {
			return err
		}
		out = r.Msg
		return nil
	})
	return out, err
}

// GetSnapshot answers a fixed-LSN snapshot from the cache and asks the
// cluster otherwise.
func (s *service) GetSnapshot(ctx context.Context, req *connect.Request[graftv1.GetSnapshotRequest]) (*connect.Response[graftv1.GetSnapshotResponse], error) {
	m := req.Msg
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return nil, err
	}
	if err := checkConsistency(m.GetConsistency()); err != nil {
		return nil, err
	}
	if m.GetLsn() != 0 {
		if pc, ok := s.e.meta.GetIfPresent(metaKey{vid: vid, lsn: volume.LSN(m.GetLsn())}); ok {
			snap := volume.Snapshot{VID: vid, LSN: volume.LSN(m.GetLsn()), PageCount: uint32(pc)}
			return connect.NewResponse(&graftv1.GetSnapshotResponse{Snapshot: snapshotProto(snap)}), nil
		}
	}
	out, err := upstream(ctx, s, false, m, volumeClient.GetSnapshot)
	if err != nil {
		return nil, err
	}
	if snap, err := snapshotFrom(out.GetSnapshot()); err == nil && snap.VID == vid && (m.GetLsn() == 0 || uint64(snap.LSN) == m.GetLsn()) {
		s.e.rememberSnapshot(snap)
	}
	return connect.NewResponse(out), nil
}

// PullGraft answers the graft of a fixed range the edge knows exists from
// the range cache (filled by one checked upstream call), and forwards any
// other (head-relative, or past every head the edge has seen).
func (s *service) PullGraft(ctx context.Context, req *connect.Request[graftv1.PullGraftRequest]) (*connect.Response[graftv1.PullGraftResponse], error) {
	m := req.Msg
	vid, err := checkRange(m)
	if err != nil {
		return nil, err
	}
	if s.e.cacheable(vid, m) {
		v, _, err := s.e.graftOf(ctx, vid, volume.LSN(m.GetSinceLsn()), volume.LSN(m.GetUntilLsn()))
		if err != nil {
			return nil, upstreamErr(err)
		}
		return connect.NewResponse(v.graft), nil
	}
	out, err := upstream(ctx, s, false, m, volumeClient.PullGraft)
	if err != nil {
		return nil, err
	}
	s.e.noteAnswer(vid, m, out.GetSnapshot())
	return connect.NewResponse(out), nil
}

// PullCommits answers as PullGraft does, keyed by the limit too.
func (s *service) PullCommits(ctx context.Context, req *connect.Request[graftv1.PullCommitsRequest]) (*connect.Response[graftv1.PullCommitsResponse], error) {
	m := req.Msg
	vid, err := checkRange(m)
	if err != nil {
		return nil, err
	}
	if s.e.cacheable(vid, m) {
		v, err := s.e.commitsOf(ctx, vid, volume.LSN(m.GetSinceLsn()), volume.LSN(m.GetUntilLsn()), m.GetLimit())
		if err != nil {
			return nil, upstreamErr(err)
		}
		return connect.NewResponse(v.commits), nil
	}
	out, err := upstream(ctx, s, false, m, volumeClient.PullCommits)
	if err != nil {
		return nil, err
	}
	s.e.noteAnswer(vid, m, out.GetSnapshot())
	return connect.NewResponse(out), nil
}

// rangeRequest is a request over an LSN range (PullGraft, PullCommits).
type rangeRequest interface {
	GetVid() string
	GetSinceLsn() uint64
	GetUntilLsn() uint64
	GetConsistency() graftv1.Consistency
	GetMinLsn() uint64
}

// checkRange checks a range request as the cluster would.
func checkRange(m rangeRequest) (volume.ID, error) {
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return volume.ID{}, err
	}
	if err := volume.CheckRange(m.GetSinceLsn(), m.GetUntilLsn()); err != nil {
		return volume.ID{}, invalidArgument(err)
	}
	if err := checkConsistency(m.GetConsistency()); err != nil {
		return volume.ID{}, err
	}
	return vid, nil
}

// cacheable reports whether a range request's answer is immutable and may
// come from the range cache: its end is fixed and at or below a snapshot
// the edge knows exists (head-relative requests always go upstream), and an
// at_least_lsn request does not ask for a snapshot the edge cannot vouch
// for (the cluster would wait for it).
func (e *Edge) cacheable(vid volume.ID, m rangeRequest) bool {
	until := volume.LSN(m.GetUntilLsn())
	if until == 0 || !e.exists(vid, until) {
		return false
	}
	minLSN := volume.LSN(m.GetMinLsn())
	return m.GetConsistency() != graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN || minLSN <= until || e.exists(vid, minLSN)
}

// noteAnswer records the snapshot a forwarded range answer names, when it
// is the one asked for (a head-relative answer names the head), as
// existing.
func (e *Edge) noteAnswer(vid volume.ID, m rangeRequest, s *graftv1.Snapshot) {
	snap, err := snapshotFrom(s)
	if err != nil || snap.VID != vid || (m.GetUntilLsn() != 0 && uint64(snap.LSN) != m.GetUntilLsn()) {
		return
	}
	e.noteHead(vid, snap.LSN)
}

// ReadPages serves pages as of a snapshot from the cache, the object store
// and the cluster, each page with the version served. A read at a fixed
// LSN never changes: its response is marked immutable for HTTP caches (and
// gets a strong ETag over GET, see withETag).
func (s *service) ReadPages(ctx context.Context, req *connect.Request[graftv1.ReadPagesRequest]) (*connect.Response[graftv1.ReadPagesResponse], error) {
	m := req.Msg
	vid, err := parseVID(m.GetVid())
	if err != nil {
		return nil, err
	}
	idxs, err := volume.ParseReadIndexes(m.GetPages(), s.e.cfg.MaxPagesPerRead)
	if err != nil {
		return nil, invalidArgument(err)
	}
	if err := checkConsistency(m.GetConsistency()); err != nil {
		return nil, err
	}
	snap, pages, err := s.e.readPages(ctx, vid, volume.LSN(m.GetLsn()), idxs, readOpts{cons: m.GetConsistency(), minLSN: m.GetMinLsn()})
	if err != nil {
		return nil, upstreamErr(err)
	}
	out := &graftv1.ReadPagesResponse{Snapshot: snapshotProto(snap), Pages: make([]*graftv1.Page, len(pages))}
	for i, p := range pages {
		data := p.data
		if data == nil {
			data = zeroPage // read-only: marshalled, never written
		}
		out.Pages[i] = &graftv1.Page{Idx: uint32(p.idx), Data: data, Lsn: uint64(p.ver)}
	}
	resp := connect.NewResponse(out)
	if m.GetLsn() != 0 {
		resp.Header().Set("Cache-Control", immutableCacheControl(s.e.cfg.Auth != nil))
	}
	return resp, nil
}

// immutableCacheControl is the Cache-Control of a fixed-LSN read. With
// tokens on it is private: a shared cache (a CDN) would otherwise serve
// the pages to callers without a token (RFC 9111 section 3.5 lets a
// shared cache store an answer to an Authorization request when it says
// public).
func immutableCacheControl(authOn bool) string {
	if authOn {
		return "private, max-age=31536000, immutable"
	}
	return "public, max-age=31536000, immutable"
}

// DeleteVolume forwards a deletion to the cluster's leader.
func (s *service) DeleteVolume(ctx context.Context, req *connect.Request[graftv1.DeleteVolumeRequest]) (*connect.Response[graftv1.DeleteVolumeResponse], error) {
	if _, err := parseVID(req.Msg.GetVid()); err != nil {
		return nil, err
	}
	out, err := upstream(ctx, s, true, req.Msg, volumeClient.DeleteVolume)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}
