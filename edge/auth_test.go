package edge

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/auth/authtest"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/tlsutil"
	"github.com/graft-cluster/graft/volume"
)

// An edge in front of a TLS + auth cluster serves HTTPS (h2 via ALPN)
// and checks tokens itself before any work, with the cluster's revocation
// list: every VolumeService RPC with no token, a garbage one, another
// key's, an expired one, a revoked one, one scope too low and another
// volume prefix is refused with the right code; the right token passes,
// and is forwarded upstream (where the cluster checks it again).
func TestEdge_AuthAndTLS(t *testing.T) {
	ca, err := tlsutil.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(t.TempDir(), "node", time.Hour, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlsutil.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	keys := authtest.NewKeys(t)
	c := clustertest.Start(t, 3, patientRaft, func(_ int, cfg *cluster.Config) { cfg.TLS, cfg.Auth = h, keys.Verifier })
	admin := keys.Token(t, "*", auth.ScopeAdmin)
	c.ClientOptions = []client.Option{client.WithRootCAs(pool), client.WithToken(admin)}
	c.WaitLeader()
	ctx := testCtx(t, 60*time.Second)

	var logs clustertest.SyncBuffer
	te := startEdge(t, func(cfg *Config) {
		cfg.Upstream = c.Endpoints()
		cfg.TLS, cfg.UpstreamCAs, cfg.Auth = h, pool, keys.Verifier
		cfg.RevocationRefresh = 20 * time.Millisecond
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if !strings.HasPrefix(te.URL, "https://") {
		t.Fatalf("edge url %s", te.URL)
	}

	vid := volume.MustNewID()
	good, err := client.New([]string{te.URL}, client.WithRootCAs(pool), client.WithToken(keys.Token(t, vid.String()[:5], auth.ScopeWrite)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := good.Commit(ctx, vid, 0, 1, []volume.PageWrite{{Idx: 1, Data: fill(1, 1, 1)}}); err != nil {
		t.Fatalf("commit through the edge with a write token: %v", err)
	}
	if _, pages, err := good.ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{}); err != nil || !bytes.Equal(pages[0].Data, fill(1, 1, 1)) {
		t.Fatalf("read through the edge: %v", err)
	}

	revoked := keys.TokenID(t, "edge-revoked", "*", auth.ScopeAdmin)
	if _, err := c.Client().Cluster(0).RevokeToken(ctx, connect.NewRequest(&graftv1.RevokeTokenRequest{Id: "edge-revoked"})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !te.tokenRevoked("edge-revoked") {
		if time.Now().After(deadline) {
			t.Fatal("the edge never read the revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}

	var calls []authtest.Call
	for _, call := range authtest.Calls(vid, "") {
		if !call.Cluster {
			calls = append(calls, call)
		}
	}
	raw, err := client.New([]string{te.URL}, client.WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	authtest.Run(t, ctx, keys, raw.Volume(0), raw.Cluster(0), calls, authtest.Cases(t, keys, revoked, volume.MustNewID().String()))
	if n := strings.Count(logs.String(), "request denied"); n == 0 {
		t.Fatal("the edge logged no denial: it did not check tokens itself")
	}
	if strings.Contains(logs.String(), revoked) || strings.Contains(logs.String(), admin) {
		t.Fatal("a token appears in the edge's logs")
	}

	// A fixed-LSN read is immutable, but with tokens on a shared cache (a
	// CDN) must not keep it: it would serve it to callers without one.
	rreq := connect.NewRequest(&graftv1.ReadPagesRequest{Vid: vid.String(), Lsn: 1, Pages: []uint32{1}})
	rreq.Header().Set("Authorization", auth.Bearer(admin))
	rresp, err := raw.Volume(0).ReadPages(ctx, rreq)
	if err != nil {
		t.Fatal(err)
	}
	if cc := rresp.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Fatalf("Cache-Control of a fixed read with auth on = %q, want private", cc)
	}

	// ALPN offers HTTP/2; /readyz needs no token.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(te.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusOK {
		t.Fatalf("edge /readyz: %s %d, want HTTP/2.0 200", resp.Proto, resp.StatusCode)
	}
}
