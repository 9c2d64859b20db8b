// Package client is the Go client of a graft cluster, in two layers.
//
// Client is the RPC client: it dials several endpoints, prefers the leader
// for commits, and retries unknown outcomes with the same content, which
// the cluster makes idempotent (a retried commit whose hash matches the
// commit at base+1 gets that commit's ack).
//
// Runtime and Volume are the replica (Open): a lazy, partial, local copy
// of volumes in a local store (client/store; durable on bbolt in
// client/boltstore), with local commits, reads that fetch pending pages
// (and an Oracle's predictions) on demand, Push crash-safe by the commit
// hash, Pull by graft, and Reset, Replay and Fork after a rejected push.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/volume"
)

// Errors returned by the client.
var (
	// ErrConflict means a commit's base was not the head; see ConflictError.
	ErrConflict = errors.New("client: commit conflict")
	// ErrNoEndpoints means New was given no endpoint.
	ErrNoEndpoints = errors.New("client: no endpoints")
)

// ConflictError is a commit rejected because its base was not the head.
type ConflictError struct {
	Base volume.LSN
	// Head is the head the commit lost against, when the server said.
	Head volume.Snapshot
	Err  error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("client: commit on base %d conflicts with head %d: %v", e.Base, e.Head.LSN, e.Err)
}

// Is makes errors.Is(err, ErrConflict) match.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the server's error.
func (e *ConflictError) Unwrap() error { return e.Err }

// Consistency is a read's freshness level.
type Consistency = graftv1.Consistency

// Consistency levels.
const (
	Linearizable = graftv1.Consistency_CONSISTENCY_LINEARIZABLE
	AtLeastLSN   = graftv1.Consistency_CONSISTENCY_AT_LEAST_LSN
	Stale        = graftv1.Consistency_CONSISTENCY_STALE
)

// ReadOptions select a read's consistency. The zero value is linearizable.
type ReadOptions struct {
	Consistency Consistency
	// MinLSN is the LSN an AtLeastLSN read waits for.
	MinLSN volume.LSN
}

// Client talks to a graft cluster. It is safe for concurrent use.
type Client struct {
	endpoints []string
	vol       []graftv1connect.VolumeServiceClient
	cl        []graftv1connect.ClusterServiceClient
	preferred atomic.Int64 // index of the endpoint believed to lead
	opts      options
	discover  sync.Once
}

type options struct {
	httpClient     *http.Client
	rootCAs        *x509.CertPool
	token          string
	attempts       int
	attemptTimeout time.Duration
	backoff        time.Duration
	connectOpts    []connect.ClientOption
}

// Option configures a Client.
type Option func(*options)

// WithHTTPClient sets the HTTP client (default: DefaultHTTPClient).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRootCAs verifies https:// endpoints against pool instead of the
// system roots (graft's --ca). Ignored with WithHTTPClient.
func WithRootCAs(pool *x509.CertPool) Option { return func(o *options) { o.rootCAs = pool } }

// WithToken sends token as the bearer token of every call (graft's
// --token, $GRAFT_TOKEN). A call whose request already has an
// Authorization header keeps it.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithInterceptors adds Connect client interceptors to every call.
func WithInterceptors(ics ...connect.Interceptor) Option {
	return func(o *options) { o.connectOpts = append(o.connectOpts, connect.WithInterceptors(ics...)) }
}

// WithAttempts sets how many times a call is tried in all (default 8).
func WithAttempts(n int) Option { return func(o *options) { o.attempts = max(1, n) } }

// WithAttemptTimeout bounds each attempt (default 10s).
func WithAttemptTimeout(d time.Duration) Option { return func(o *options) { o.attemptTimeout = d } }

// WithBackoff sets the first retry delay; it doubles up to 1s (default 20ms).
func WithBackoff(d time.Duration) Option { return func(o *options) { o.backoff = d } }

// WithJSON makes the client speak Connect's JSON codec instead of binary.
func WithJSON() Option {
	return func(o *options) { o.connectOpts = append(o.connectOpts, connect.WithProtoJSON()) }
}

// DefaultHTTPClient returns the client's default HTTP client: HTTP/1.1
// with keep-alive, a pooled connection per concurrent call. Against h2c
// (one multiplexed HTTP/2 connection) it measured 7% lower commit p50
// with one caller and 5% more commits/s with 64, in two interleaved
// rounds (docs/BENCHMARKS.md): Go's HTTP/2 costs more CPU per call on
// both ends. Pass WithHTTPClient for HTTP/2 (h2c or TLS).
func DefaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
	}}
}

// H2CHTTPClient returns an HTTP client that speaks HTTP/2 without TLS
// (h2c) to http:// endpoints, so concurrent calls share one connection.
func H2CHTTPClient() *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// New returns a client for the given endpoints ("http://host:port").
func New(endpoints []string, opts ...Option) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, ErrNoEndpoints
	}
	o := options{attempts: 8, attemptTimeout: 10 * time.Second, backoff: 20 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if o.httpClient == nil {
		o.httpClient = DefaultHTTPClient()
		if o.rootCAs != nil {
			o.httpClient.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: o.rootCAs, MinVersion: tls.VersionTLS12}
		}
	}
	if o.token != "" {
		o.connectOpts = append(o.connectOpts, connect.WithInterceptors(bearer("Bearer "+o.token)))
	}

	// Pages are mostly incompressible and the cluster is near: gzip would
	// cost CPU on the commit path for nothing.
	o.connectOpts = append([]connect.ClientOption{connect.WithAcceptCompression("gzip", nil, nil)}, o.connectOpts...)
	c := &Client{opts: o}
	for _, e := range endpoints {
		e = strings.TrimRight(e, "/")
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		c.endpoints = append(c.endpoints, e)
		c.vol = append(c.vol, graftv1connect.NewVolumeServiceClient(o.httpClient, e, o.connectOpts...))
		c.cl = append(c.cl, graftv1connect.NewClusterServiceClient(o.httpClient, e, o.connectOpts...))
	}
	return c, nil
}

// HTTPClient returns the HTTP client the client calls through.
func (c *Client) HTTPClient() *http.Client { return c.opts.httpClient }

// Endpoints returns the endpoints the client was made with.
func (c *Client) Endpoints() []string { return c.endpoints }

// retryable reports whether a call may be tried again (on another node).
// Unavailable and DeadlineExceeded may be unknown outcomes; a commit is
// retried with the same content, which the cluster deduplicates. Canceled
// is retryable because do only asks after checking that the caller's ctx is
// alive: connect-go reports a connection reset by a dying peer as canceled.
func retryable(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted,
		connect.CodeUnknown, connect.CodeCanceled:
		return true
	default:
		return false
	}
}

// do runs call against endpoints, starting with the preferred one and
// moving on after a retryable failure, with exponential backoff.
func (c *Client) do(ctx context.Context, call func(ctx context.Context, i int) error) error {
	backoff := c.opts.backoff
	start := int(c.preferred.Load())
	var err error
	for attempt := 0; attempt < c.opts.attempts; attempt++ {
		i := (start + attempt) % len(c.endpoints)
		actx, cancel := context.WithTimeout(ctx, c.opts.attemptTimeout)
		err = hintPlaintext(c.endpoints[i], call(actx, i))
		cancel()
		if err == nil {
			if attempt > 0 {
				c.preferred.Store(int64(i))
			}
			return nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return err
		}
		if attempt+1 < c.opts.attempts {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return err
			}
			backoff = min(2*backoff, time.Second)
		}
	}
	return err
}

// findLeader points the client at the leader's endpoint, once. Commits
// sent to the leader skip the follower's forwarding hop.
func (c *Client) findLeader(ctx context.Context) {
	c.discover.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		for i := range c.cl {
			resp, err := c.cl[i].Status(ctx, connect.NewRequest(&graftv1.StatusRequest{}))
			if err != nil {
				continue
			}
			for _, n := range resp.Msg.GetNodes() {
				if n.GetId() != resp.Msg.GetLeaderId() {
					continue
				}
				for j, e := range c.endpoints {
					if strings.HasSuffix(e, "://"+n.GetApiAddr()) {
						c.preferred.Store(int64(j))
						return
					}
				}
			}
			return
		}
	})
}

// Commit commits pages on base and returns the new snapshot. Pages need
// not be sorted. An unknown outcome (leader lost, timeout, network) is
// retried with the same content; if the first try had committed, the retry
// returns that commit's snapshot. A stale base returns a *ConflictError.
func (c *Client) Commit(ctx context.Context, vid volume.ID, base volume.LSN, pageCount uint32, pages []volume.PageWrite) (volume.Snapshot, error) {
	c.findLeader(ctx)
	req := &graftv1.CommitRequest{Vid: vid.String(), BaseLsn: uint64(base), PageCount: pageCount, Pages: make([]*graftv1.Page, len(pages))}
	for i, p := range pages {
		req.Pages[i] = &graftv1.Page{Idx: uint32(p.Idx), Data: p.Data}
	}
	var snap volume.Snapshot
	err := c.do(ctx, func(ctx context.Context, i int) error {
		resp, err := c.vol[i].Commit(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		snap, err = snapshotFrom(resp.Msg.GetSnapshot())
		return err
	})
	if err != nil && connect.CodeOf(err) == connect.CodeAborted {
		ce := &ConflictError{Base: base, Err: err}
		var cerr *connect.Error
		if errors.As(err, &cerr) {
			for _, d := range cerr.Details() {
				if m, derr := d.Value(); derr == nil {
					if cc, ok := m.(*graftv1.CommitConflict); ok {
						ce.Head, _ = snapshotFrom(cc.GetHead())
					}
				}
			}
		}
		return volume.Snapshot{}, ce
	}
	return snap, err
}

// Snapshot returns the volume's snapshot at lsn (0: the head).
func (c *Client) Snapshot(ctx context.Context, vid volume.ID, lsn volume.LSN, ro ReadOptions) (volume.Snapshot, error) {
	var snap volume.Snapshot
	err := c.do(ctx, func(ctx context.Context, i int) error {
		resp, err := c.vol[i].GetSnapshot(ctx, connect.NewRequest(&graftv1.GetSnapshotRequest{
			Vid: vid.String(), Lsn: uint64(lsn), Consistency: ro.Consistency, MinLsn: uint64(ro.MinLSN),
		}))
		if err != nil {
			return err
		}
		snap, err = snapshotFrom(resp.Msg.GetSnapshot())
		return err
	})
	return snap, err
}

// Page is a page read at a snapshot; LSN is the version served (0: never
// written).
type Page struct {
	Idx  volume.PageIdx
	LSN  volume.LSN
	Data []byte
}

// ReadPages reads pages at lsn (0: the head at the given consistency).
func (c *Client) ReadPages(ctx context.Context, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx, ro ReadOptions) (volume.Snapshot, []Page, error) {
	req := &graftv1.ReadPagesRequest{Vid: vid.String(), Lsn: uint64(lsn), Consistency: ro.Consistency, MinLsn: uint64(ro.MinLSN)}
	for _, idx := range idxs {
		req.Pages = append(req.Pages, uint32(idx))
	}
	var snap volume.Snapshot
	var pages []Page
	err := c.do(ctx, func(ctx context.Context, i int) error {
		resp, err := c.vol[i].ReadPages(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		if snap, err = snapshotFrom(resp.Msg.GetSnapshot()); err != nil {
			return err
		}
		pages = pages[:0]
		for _, p := range resp.Msg.GetPages() {
			if err := volume.ValidatePage(p.GetData()); err != nil {
				return fmt.Errorf("server sent page %d: %w", p.GetIdx(), err)
			}
			pages = append(pages, Page{Idx: volume.PageIdx(p.GetIdx()), LSN: volume.LSN(p.GetLsn()), Data: p.GetData()})
		}
		return nil
	})
	return snap, pages, err
}

// PullGraft returns the pages changed in (since, until] (until 0: the head)
// and the snapshot at until.
func (c *Client) PullGraft(ctx context.Context, vid volume.ID, since, until volume.LSN, ro ReadOptions) (volume.Snapshot, volume.PageSet, error) {
	var snap volume.Snapshot
	var set volume.PageSet
	err := c.do(ctx, func(ctx context.Context, i int) error {
		resp, err := c.vol[i].PullGraft(ctx, connect.NewRequest(&graftv1.PullGraftRequest{
			Vid: vid.String(), SinceLsn: uint64(since), UntilLsn: uint64(until), Consistency: ro.Consistency, MinLsn: uint64(ro.MinLSN),
		}))
		if err != nil {
			return err
		}
		if snap, err = snapshotFrom(resp.Msg.GetSnapshot()); err != nil {
			return err
		}
		set, err = volume.DecodePageSet(resp.Msg.GetGraft())
		return err
	})
	return snap, set, err
}

// WatchVolume streams vid's head from endpoint i (modulo the endpoint
// count): fn gets the current head at once, then each head past since
// (and past the last one sent). It returns when the stream ends, fn
// returns an error, or ctx ends; it does not retry (the caller does, with
// its own backoff, on another endpoint).
func (c *Client) WatchVolume(ctx context.Context, i int, vid volume.ID, since volume.LSN, fn func(volume.Snapshot) error) error {
	stream, err := c.vol[i%len(c.vol)].WatchVolume(ctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: vid.String(), SinceLsn: uint64(since)}))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		snap, err := snapshotFrom(stream.Msg().GetSnapshot())
		if err != nil {
			return err
		}
		if err := fn(snap); err != nil {
			return err
		}
	}
	return stream.Err()
}

// CommitInfo is a commit's metadata.
type CommitInfo struct {
	LSN        volume.LSN
	PageCount  uint32
	Hash       volume.Hash
	Graft      volume.PageSet
	CommitTime time.Time
}

// PullCommits returns commit metadata in (since, until], at most limit of
// them (0: the server's cap), and whether more remain.
func (c *Client) PullCommits(ctx context.Context, vid volume.ID, since, until volume.LSN, limit int, ro ReadOptions) (volume.Snapshot, []CommitInfo, bool, error) {
	var snap volume.Snapshot
	var out []CommitInfo
	var more bool
	err := c.do(ctx, func(ctx context.Context, i int) error {
		resp, err := c.vol[i].PullCommits(ctx, connect.NewRequest(&graftv1.PullCommitsRequest{
			Vid: vid.String(), SinceLsn: uint64(since), UntilLsn: uint64(until), Limit: uint32(limit),
			Consistency: ro.Consistency, MinLsn: uint64(ro.MinLSN),
		}))
		if err != nil {
			return err
		}
		if snap, err = snapshotFrom(resp.Msg.GetSnapshot()); err != nil {
			return err
		}
		out, more = out[:0], resp.Msg.GetMore()
		for _, ci := range resp.Msg.GetCommits() {
			h, err := volume.HashFromBytes(ci.GetHash())
			if err != nil {
				return err
			}
			g, err := volume.DecodePageSet(ci.GetGraft())
			if err != nil {
				return err
			}
			out = append(out, CommitInfo{LSN: volume.LSN(ci.GetLsn()), PageCount: ci.GetPageCount(), Hash: h, Graft: g, CommitTime: time.UnixMilli(ci.GetCommitTimeUnixMs())})
		}
		return nil
	})
	return snap, out, more, err
}

// Status returns the cluster's status as seen from the first endpoint that
// answers.
func (c *Client) Status(ctx context.Context) (*graftv1.StatusResponse, error) {
	var out *graftv1.StatusResponse
	err := c.do(ctx, func(ctx context.Context, i int) error {
		resp, err := c.cl[i].Status(ctx, connect.NewRequest(&graftv1.StatusRequest{}))
		if err != nil {
			return err
		}
		out = resp.Msg
		return nil
	})
	return out, err
}

// Flush asks the cluster to flush everything acknowledged so far to the
// object store, and returns once it is durable there.
func (c *Client) Flush(ctx context.Context) error {
	return c.do(ctx, func(ctx context.Context, i int) error {
		_, err := c.cl[i].Flush(ctx, connect.NewRequest(&graftv1.FlushRequest{}))
		return err
	})
}

// DeleteVolume deletes a volume: its commits and reads then answer
// not_found, and the cluster's garbage collection removes its objects.
// Deleting a deleted volume succeeds, so the call is safe to retry.
func (c *Client) DeleteVolume(ctx context.Context, vid volume.ID) error {
	return c.do(ctx, func(ctx context.Context, i int) error {
		_, err := c.vol[i].DeleteVolume(ctx, connect.NewRequest(&graftv1.DeleteVolumeRequest{Vid: vid.String()}))
		return err
	})
}

// Do runs call against the endpoints the way the client's own methods do:
// the endpoint believed to lead first (found once when leader is set),
// then the next one after a retryable failure, with backoff. It lets a
// proxy (the edge) forward raw requests and keep the server's answer,
// error details included.
func (c *Client) Do(ctx context.Context, leader bool, call func(ctx context.Context, vol graftv1connect.VolumeServiceClient) error) error {
	if leader {
		c.findLeader(ctx)
	}
	return c.do(ctx, func(ctx context.Context, i int) error { return call(ctx, c.vol[i]) })
}

// Cluster returns the ClusterService client of endpoint i, for admin calls.
func (c *Client) Cluster(i int) graftv1connect.ClusterServiceClient { return c.cl[i%len(c.cl)] }

// Volume returns the VolumeService client of endpoint i, for raw calls.
func (c *Client) Volume(i int) graftv1connect.VolumeServiceClient { return c.vol[i%len(c.vol)] }

func snapshotFrom(s *graftv1.Snapshot) (volume.Snapshot, error) {
	if s == nil {
		return volume.Snapshot{}, errors.New("client: response has no snapshot")
	}
	vid, err := volume.ParseID(s.GetVid())
	if err != nil {
		return volume.Snapshot{}, fmt.Errorf("client: response snapshot: %w", err)
	}
	return volume.Snapshot{VID: vid, LSN: volume.LSN(s.GetLsn()), PageCount: s.GetPageCount()}, nil
}
