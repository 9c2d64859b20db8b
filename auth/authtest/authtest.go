// Package authtest drives every RPC with the tokens that must be refused
// and the ones that must pass, for tests of nodes and edges.
package authtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/api/graft/v1/graftv1connect"
	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/volume"
)

// Keys is a signing key pair and a verifier of its tokens.
type Keys struct {
	Private  ed25519.PrivateKey
	Public   ed25519.PublicKey
	Verifier *auth.Verifier
}

// NewKeys returns a fresh key pair.
func NewKeys(tb testing.TB) *Keys {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return &Keys{Private: priv, Public: pub, Verifier: auth.NewVerifier(pub, nil)}
}

// Token issues a token valid for an hour.
func (k *Keys) Token(tb testing.TB, volumes string, scopes ...auth.Scope) string {
	tb.Helper()
	tok, _, err := auth.Issue(k.Private, auth.IssueOptions{Scopes: scopes, Volumes: volumes, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TokenID issues a token valid for an hour with the given ID.
func (k *Keys) TokenID(tb testing.TB, id, volumes string, scopes ...auth.Scope) string {
	tb.Helper()
	tok, _, err := auth.Issue(k.Private, auth.IssueOptions{Scopes: scopes, Volumes: volumes, TTL: time.Hour, ID: id})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// Expired issues a token that expired an hour ago.
func (k *Keys) Expired(tb testing.TB) string {
	tb.Helper()
	tok, _, err := auth.Issue(k.Private, auth.IssueOptions{Scopes: []auth.Scope{auth.ScopeAdmin}, Volumes: "*", TTL: time.Hour, Now: time.Now().Add(-2 * time.Hour)})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// Call is one RPC with a given Authorization header value ("" for none).
type Call struct {
	Procedure string
	Scope     auth.Scope
	HasVolume bool
	Cluster   bool // a ClusterService method (an edge serves none)
	Do        func(ctx context.Context, vol graftv1connect.VolumeServiceClient, cl graftv1connect.ClusterServiceClient, authz string) error
}

func req[T any](m *T, authz string) *connect.Request[T] {
	r := connect.NewRequest(m)
	if authz != "" {
		r.Header().Set("Authorization", authz)
	}
	return r
}

func unary[T, R any](f func(context.Context, *connect.Request[T]) (*connect.Response[R], error), m *T, ctx context.Context, authz string) error {
	_, err := f(ctx, req(m, authz))
	return err
}

// Calls returns one harmless call of every RPC on vid. leaderID names the
// leader (TransferLeadership to it is a no-op).
func Calls(vid volume.ID, leaderID string) []Call {
	v := vid.String()
	page := bytes.Repeat([]byte{'a'}, volume.PageSize)
	vc := func(p string, s auth.Scope, f func(ctx context.Context, vol graftv1connect.VolumeServiceClient, authz string) error) Call {
		return Call{Procedure: p, Scope: s, HasVolume: true, Do: func(ctx context.Context, vol graftv1connect.VolumeServiceClient, _ graftv1connect.ClusterServiceClient, authz string) error {
			return f(ctx, vol, authz)
		}}
	}
	cc := func(p string, s auth.Scope, hasVol bool, f func(ctx context.Context, cl graftv1connect.ClusterServiceClient, authz string) error) Call {
		return Call{Procedure: p, Scope: s, HasVolume: hasVol, Cluster: true, Do: func(ctx context.Context, _ graftv1connect.VolumeServiceClient, cl graftv1connect.ClusterServiceClient, authz string) error {
			return f(ctx, cl, authz)
		}}
	}
	return []Call{
		vc(graftv1connect.VolumeServiceCommitProcedure, auth.ScopeWrite, func(ctx context.Context, vol graftv1connect.VolumeServiceClient, a string) error {
			// base 0 on a volume that may have commits: a conflict once it does.
			return unary(vol.Commit, &graftv1.CommitRequest{Vid: v, PageCount: 1, Pages: []*graftv1.Page{{Idx: 1, Data: page}}}, ctx, a)
		}),
		vc(graftv1connect.VolumeServiceGetSnapshotProcedure, auth.ScopeRead, func(ctx context.Context, vol graftv1connect.VolumeServiceClient, a string) error {
			return unary(vol.GetSnapshot, &graftv1.GetSnapshotRequest{Vid: v}, ctx, a)
		}),
		vc(graftv1connect.VolumeServicePullGraftProcedure, auth.ScopeRead, func(ctx context.Context, vol graftv1connect.VolumeServiceClient, a string) error {
			return unary(vol.PullGraft, &graftv1.PullGraftRequest{Vid: v}, ctx, a)
		}),
		vc(graftv1connect.VolumeServicePullCommitsProcedure, auth.ScopeRead, func(ctx context.Context, vol graftv1connect.VolumeServiceClient, a string) error {
			return unary(vol.PullCommits, &graftv1.PullCommitsRequest{Vid: v}, ctx, a)
		}),
		vc(graftv1connect.VolumeServiceReadPagesProcedure, auth.ScopeRead, func(ctx context.Context, vol graftv1connect.VolumeServiceClient, a string) error {
			return unary(vol.ReadPages, &graftv1.ReadPagesRequest{Vid: v, Pages: []uint32{1}}, ctx, a)
		}),
		vc(graftv1connect.VolumeServiceWatchVolumeProcedure, auth.ScopeRead, func(ctx context.Context, vol graftv1connect.VolumeServiceClient, a string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			s, err := vol.WatchVolume(ctx, req(&graftv1.WatchVolumeRequest{Vid: v}, a))
			if err != nil {
				return err
			}
			defer s.Close()
			if s.Receive() {
				return nil
			}
			return s.Err()
		}),
		cc(graftv1connect.ClusterServiceStatusProcedure, auth.ScopeRead, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.Status, &graftv1.StatusRequest{}, ctx, a)
		}),
		cc(graftv1connect.ClusterServiceReadIndexProcedure, auth.ScopeRead, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.ReadIndex, &graftv1.ReadIndexRequest{}, ctx, a)
		}),
		cc(graftv1connect.ClusterServiceListRevokedTokensProcedure, auth.ScopePublic, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.ListRevokedTokens, &graftv1.ListRevokedTokensRequest{}, ctx, a)
		}),
		cc(graftv1connect.ClusterServiceAddNodeProcedure, auth.ScopeAdmin, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.AddNode, &graftv1.AddNodeRequest{}, ctx, a) // invalid_argument once allowed
		}),
		cc(graftv1connect.ClusterServiceRemoveNodeProcedure, auth.ScopeAdmin, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.RemoveNode, &graftv1.RemoveNodeRequest{}, ctx, a)
		}),
		cc(graftv1connect.ClusterServiceTransferLeadershipProcedure, auth.ScopeAdmin, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.TransferLeadership, &graftv1.TransferLeadershipRequest{Id: leaderID}, ctx, a) // a no-op
		}),
		cc(graftv1connect.ClusterServiceFlushProcedure, auth.ScopeAdmin, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.Flush, &graftv1.FlushRequest{}, ctx, a)
		}),
		cc(graftv1connect.ClusterServiceUnquarantineProcedure, auth.ScopeAdmin, true, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.Unquarantine, &graftv1.UnquarantineRequest{Vid: v}, ctx, a)
		}),
		cc(graftv1connect.ClusterServiceRevokeTokenProcedure, auth.ScopeAdmin, false, func(ctx context.Context, cl graftv1connect.ClusterServiceClient, a string) error {
			return unary(cl.RevokeToken, &graftv1.RevokeTokenRequest{}, ctx, a) // invalid_argument once allowed
		}),
	}
}

// Case is one token and the code every call must get with it.
type Case struct {
	Name  string
	Authz string
	// Want returns the code call c must be refused with, or 0 when it
	// must pass the auth check (it may fail for other reasons).
	Want func(c Call) connect.Code
}

// Cases returns the standard cases: no token, garbage, expired, revoked
// (revokedToken must be on the revocation list), a token one scope below
// what the call needs, a token of another volume prefix, and a good one.
func Cases(tb testing.TB, k *Keys, revokedToken string, otherPrefix string) []Case {
	unauth := func(Call) connect.Code { return connect.CodeUnauthenticated }
	return []Case{
		{"no token", "", unauth},
		{"garbage", "Bearer not-a-jwt", unauth},
		{"other key", auth.Bearer(NewKeys(tb).Token(tb, "*", auth.ScopeAdmin)), unauth},
		{"expired", auth.Bearer(k.Expired(tb)), unauth},
		{"revoked", auth.Bearer(revokedToken), unauth},
		{"scope below", "", nil}, // filled per call
		{"other volume prefix", auth.Bearer(k.Token(tb, otherPrefix, auth.ScopeAdmin)), func(c Call) connect.Code {
			if c.HasVolume {
				return connect.CodePermissionDenied
			}
			return 0
		}},
		{"right token", auth.Bearer(k.Token(tb, "*", auth.ScopeAdmin)), func(Call) connect.Code { return 0 }},
	}
}

// Run runs every call with every case against one endpoint's clients and
// checks the codes. The token never appears in an error message.
func Run(t *testing.T, ctx context.Context, k *Keys, vol graftv1connect.VolumeServiceClient, cl graftv1connect.ClusterServiceClient, calls []Call, cases []Case) {
	t.Helper()
	for _, c := range calls {
		for _, tc := range cases {
			authz, want := tc.Authz, connect.Code(0)
			switch {
			case c.Scope == auth.ScopePublic: // any token or none passes
			case tc.Name == "scope below":
				if c.Scope == auth.ScopeRead {
					continue // nothing is below read
				}
				authz, want = auth.Bearer(k.Token(t, "*", c.Scope-1)), connect.CodePermissionDenied
			default:
				want = tc.Want(c)
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Do(cctx, vol, cl, authz)
			cancel()
			got := connect.CodeOf(err)
			if err == nil {
				got = 0
			}
			switch {
			case want != 0 && got != want:
				t.Errorf("%s with %s: %v (code %v), want %v", c.Procedure, tc.Name, err, got, want)
			case want == 0 && (got == connect.CodeUnauthenticated || got == connect.CodePermissionDenied):
				t.Errorf("%s with %s: refused: %v", c.Procedure, tc.Name, err)
			}
			if tok, ok := strings.CutPrefix(authz, "Bearer "); ok && err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("%s with %s: the error echoes the token", c.Procedure, tc.Name)
			}
		}
	}
}

// IsRefused reports whether err is an auth refusal.
func IsRefused(err error) bool {
	var ce *connect.Error
	return errors.As(err, &ce) && (ce.Code() == connect.CodeUnauthenticated || ce.Code() == connect.CodePermissionDenied)
}
