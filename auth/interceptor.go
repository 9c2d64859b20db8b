package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
)

// methodScopes maps each procedure to the scope it needs. A procedure not
// listed needs admin (fail closed: a new RPC is admin-only until listed).
var methodScopes = map[string]Scope{
	graftv1connect.VolumeServiceCommitProcedure:      ScopeWrite,
	graftv1connect.VolumeServiceGetSnapshotProcedure: ScopeRead,
	graftv1connect.VolumeServicePullGraftProcedure:   ScopeRead,
	graftv1connect.VolumeServicePullCommitsProcedure: ScopeRead,
	graftv1connect.VolumeServiceReadPagesProcedure:   ScopeRead,
	graftv1connect.VolumeServiceWatchVolumeProcedure: ScopeRead,

	graftv1connect.ClusterServiceStatusProcedure:    ScopeRead,
	graftv1connect.ClusterServiceReadIndexProcedure: ScopeRead,
	// The IDs of revoked tokens are no secret, and an edge polls them
	// without a token of its own.
	graftv1connect.ClusterServiceListRevokedTokensProcedure: ScopePublic,

	graftv1connect.ClusterServiceAddNodeProcedure:            ScopeAdmin,
	graftv1connect.ClusterServiceRemoveNodeProcedure:         ScopeAdmin,
	graftv1connect.ClusterServiceTransferLeadershipProcedure: ScopeAdmin,
	graftv1connect.ClusterServiceFlushProcedure:              ScopeAdmin,
	graftv1connect.ClusterServiceUnquarantineProcedure:       ScopeAdmin,
	graftv1connect.ClusterServiceRevokeTokenProcedure:        ScopeAdmin,
	"/graft.v1.ClusterService/DeleteVolume":                  ScopeAdmin,
}

// ScopeFor returns the scope a procedure needs.
func ScopeFor(procedure string) Scope {
	if s, ok := methodScopes[procedure]; ok {
		return s
	}
	return ScopeAdmin
}

// Guard checks every request's bearer token before the handler runs. A
// nil *Guard is "auth off": NewInterceptor then passes everything.
type Guard struct {
	verifier *Verifier
	revoked  func(id string) bool
	log      *slog.Logger
}

// NewGuard returns a Guard verifying with v. revoked, when not nil,
// reports whether a token ID is revoked (a node consults its FSM's list,
// an edge its copy of it). log receives one line per denied request.
func NewGuard(v *Verifier, revoked func(id string) bool, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{verifier: v, revoked: revoked, log: log}
}

type credKey struct{}

// WithCredential returns ctx carrying an Authorization header value, which
// ForwardCredential sends on the calls made under ctx.
func WithCredential(ctx context.Context, authorization string) context.Context {
	if authorization == "" {
		return ctx
	}
	return context.WithValue(ctx, credKey{}, authorization)
}

// Credential returns the Authorization header value ctx carries, or "".
func Credential(ctx context.Context) string {
	s, _ := ctx.Value(credKey{}).(string)
	return s
}

// Bearer returns the Authorization header value of token.
func Bearer(token string) string { return "Bearer " + token }

// denied is one refusal: its Connect error and what the log line says.
type denied struct {
	code    connect.Code
	msg     string
	tokenID string
}

// check authenticates header and authorizes procedure (and vid, when the
// request names one: vid "" skips the volume check).
func (g *Guard) check(procedure string, header http.Header) (*Claims, *denied) {
	raw := header.Get("Authorization")
	token, ok := strings.CutPrefix(raw, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return nil, &denied{code: connect.CodeUnauthenticated, msg: "no token: send Authorization: Bearer TOKEN (graft token issue)"}
	}
	c, err := g.verifier.Verify(strings.TrimSpace(token))
	switch {
	case errors.Is(err, ErrExpired):
		return nil, &denied{code: connect.CodeUnauthenticated, msg: fmt.Sprintf("token %s expired at %s", c.ID, c.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")), tokenID: c.ID}
	case err != nil:
		return nil, &denied{code: connect.CodeUnauthenticated, msg: "invalid token: it does not verify with this cluster's key"}
	case g.revoked != nil && g.revoked(c.ID):
		return nil, &denied{code: connect.CodeUnauthenticated, msg: fmt.Sprintf("token %s is revoked", c.ID), tokenID: c.ID}
	}
	if need := ScopeFor(procedure); !c.Allows(need) {
		return nil, &denied{code: connect.CodePermissionDenied, tokenID: c.ID,
			msg: fmt.Sprintf("%s needs scope %s; token %s has %s", procedure, need, c.ID, strings.Join(c.Scopes, ","))}
	}
	return c, nil
}

// checkVolume authorizes the volume a request names.
func checkVolume(c *Claims, vid string) *denied {
	if c.CoversVolume(vid) {
		return nil
	}
	return &denied{code: connect.CodePermissionDenied, tokenID: c.ID,
		msg: fmt.Sprintf("token %s covers volumes %q, not %q", c.ID, c.Volumes+"*", vid)}
}

// refuse logs d once and returns its error.
func (g *Guard) refuse(ctx context.Context, d *denied, procedure, peer, vid string) error {
	g.log.LogAttrs(ctx, slog.LevelWarn, "request denied",
		slog.String("token_id", d.tokenID), slog.String("method", procedure),
		slog.String("volume", vid), slog.String("peer", peer), slog.String("code", d.code.String()),
		slog.String("reason", d.msg))
	return connect.NewError(d.code, errors.New(d.msg))
}

type vidGetter interface{ GetVid() string }

// NewInterceptor returns the server-side interceptor of g (unary and
// streaming handlers). With g nil it passes every request through.
func NewInterceptor(g *Guard) connect.Interceptor { return interceptor{g: g} }

type interceptor struct{ g *Guard }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	if i.g == nil {
		return next
	}
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		proc := req.Spec().Procedure
		if req.Spec().IsClient || ScopeFor(proc) == ScopePublic {
			return next(ctx, req)
		}
		var vid string
		if m, ok := req.Any().(vidGetter); ok {
			vid = m.GetVid()
		}
		c, d := i.g.check(proc, req.Header())
		if d == nil && vid != "" {
			d = checkVolume(c, vid)
		}
		if d != nil {
			return nil, i.g.refuse(ctx, d, proc, req.Peer().Addr, vid)
		}
		return next(WithCredential(ctx, req.Header().Get("Authorization")), req)
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	if i.g == nil {
		return next
	}
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		proc := conn.Spec().Procedure
		c, d := i.g.check(proc, conn.RequestHeader())
		if d != nil {
			return i.g.refuse(ctx, d, proc, conn.Peer().Addr, "")
		}
		ctx = WithCredential(ctx, conn.RequestHeader().Get("Authorization"))
		return next(ctx, &volumeCheckConn{StreamingHandlerConn: conn, g: i.g, c: c, ctx: ctx})
	}
}

// volumeCheckConn authorizes the volume of each message a stream receives
// (WatchVolume's one request) before the handler sees it.
type volumeCheckConn struct {
	connect.StreamingHandlerConn
	g   *Guard
	c   *Claims
	ctx context.Context
}

func (v *volumeCheckConn) Receive(m any) error {
	if err := v.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	if g, ok := m.(vidGetter); ok && g.GetVid() != "" {
		if d := checkVolume(v.c, g.GetVid()); d != nil {
			return v.g.refuse(v.ctx, d, v.Spec().Procedure, v.Peer().Addr, g.GetVid())
		}
	}
	return nil
}

// ForwardCredential returns a client interceptor that sends, on each call
// without an Authorization header, the credential the call's ctx carries
// (the caller's, on a forwarded request) or else fallback (an edge's own
// token; "" for none).
func ForwardCredential(fallback string) connect.Interceptor {
	return forwarder{fallback: fallback}
}

type forwarder struct{ fallback string }

func (f forwarder) value(ctx context.Context) string {
	if c := Credential(ctx); c != "" {
		return c
	}
	return f.fallback
}

func (f forwarder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient && req.Header().Get("Authorization") == "" {
			if v := f.value(ctx); v != "" {
				req.Header().Set("Authorization", v)
			}
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient sets the header at the first Send: connect-go merges
// the request's own headers into the conn after the interceptors ran.
func (f forwarder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		return &credConn{StreamingClientConn: next(ctx, spec), value: f.value(ctx)}
	}
}

type credConn struct {
	connect.StreamingClientConn
	value string
}

func (c *credConn) Send(m any) error {
	if c.value != "" && c.RequestHeader().Get("Authorization") == "" {
		c.RequestHeader().Set("Authorization", c.value)
	}
	return c.StreamingClientConn.Send(m)
}

func (f forwarder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
