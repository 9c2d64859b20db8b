package cluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/tlsutil"
	"github.com/graft-cluster/graft/volume"
)

// newTLS writes a fresh CA and a loopback certificate into a temp dir.
func newTLS(t *testing.T) (*tlsutil.CA, *tlsutil.Holder) {
	t.Helper()
	ca, err := tlsutil.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteFiles(t.TempDir(), "node", time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return ca, h
}

func caPool(ca *tlsutil.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Client links are HTTPS (HTTP/2 via ALPN, HTTP/1.1 too) and peer links
// (Raft, forwarding) mutual TLS: a commit sent to a follower is forwarded
// over TLS and replicated over TLS. A plaintext client is refused with an
// error that says to use https, a client without the CA fails to verify.
func TestCluster_TLS(t *testing.T) {
	ca, h := newTLS(t)
	c := clustertest.Start(t, 3, func(i int, cfg *cluster.Config) { cfg.TLS = h })
	c.ClientOptions = []client.Option{client.WithRootCAs(caPool(ca))}
	ctx := testCtx(t)
	l := c.WaitLeader()
	f := (l + 1) % 3
	if !strings.HasPrefix(c.Endpoint(f), "https://") {
		t.Fatalf("endpoint %s", c.Endpoint(f))
	}
	vid := volume.MustNewID()
	snap, err := c.Client(f).Commit(ctx, vid, 0, 1, []volume.PageWrite{{Idx: 1, Data: page('t')}})
	if err != nil || snap.LSN != 1 {
		t.Fatalf("commit through a follower over TLS: %v %v", snap, err)
	}
	if _, pages, err := c.Client(f).ReadPages(ctx, vid, 0, []volume.PageIdx{1}, client.ReadOptions{}); err != nil || pages[0].Data[0] != 't' {
		t.Fatalf("linearizable read on a follower (read index forwarded over TLS): %v", err)
	}

	// ALPN: h2 when offered, HTTP/1.1 otherwise.
	for _, tc := range []struct {
		h2   bool
		want string
	}{{true, "HTTP/2.0"}, {false, "HTTP/1.1"}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(ca)}, ForceAttemptHTTP2: tc.h2}
		resp, err := (&http.Client{Transport: tr}).Get(c.Endpoint(f) + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.Proto != tc.want || resp.StatusCode != http.StatusOK {
			t.Fatalf("h2=%v: proto %s status %d, want %s 200", tc.h2, resp.Proto, resp.StatusCode, tc.want)
		}
	}

	// A plaintext client is refused with a clear error.
	plain, err := client.New([]string{"http://" + c.Nodes[f].APIAddr()}, client.WithAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Status(ctx); !errors.Is(err, client.ErrPlaintextToTLS) {
		t.Fatalf("plaintext client against a TLS node: %v, want ErrPlaintextToTLS", err)
	}
	// A client that does not trust the CA (system pool) fails to verify.
	untrusting, err := client.New([]string{c.Endpoint(f)}, client.WithAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	var uerr x509.UnknownAuthorityError
	if _, err := untrusting.Status(ctx); !errors.As(err, &uerr) {
		t.Fatalf("client without the CA: %v, want an unknown-authority error", err)
	}
}

// A member whose certificate comes from another CA cannot join: the
// members refuse its Raft connections and it refuses theirs, so AddNode
// never sees it catch up and it stays a nonvoter that holds no data.
func TestCluster_TLSOtherCACannotJoin(t *testing.T) {
	ca, h := newTLS(t)
	c := clustertest.Start(t, 3, func(i int, cfg *cluster.Config) { cfg.TLS = h })
	c.ClientOptions = []client.Option{client.WithRootCAs(caPool(ca))}
	l := c.WaitLeader()
	ctx := testCtx(t)
	if _, err := c.Client(l).Commit(ctx, volume.MustNewID(), 0, 1, []volume.PageWrite{{Idx: 1, Data: page('x')}}); err != nil {
		t.Fatal(err)
	}

	_, other := newTLS(t)
	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.TLS = "n9", filepath.Join(t.TempDir(), "n9"), other
	cfg.RaftListener, cfg.APIListener = listenLocal(t), listenLocal(t)
	cfg.Logger, cfg.RaftLogLevel = clustertest.Logger(t), "off"
	n9, err := cluster.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n9.Abort() })

	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = c.Client(l).Cluster(0).AddNode(actx, connect.NewRequest(&graftv1.AddNodeRequest{Id: "n9", RaftAddr: n9.RaftAddr(), ApiAddr: n9.APIAddr()}))
	if err == nil {
		t.Fatal("a member with another CA's certificate joined")
	}
	if applied := n9.FSM().Applied(); applied != 0 {
		t.Fatalf("the outsider applied index %d: it got data", applied)
	}
	st, err := c.Client(l).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.GetNodes() {
		if n.GetId() == "n9" && n.GetSuffrage() == "voter" {
			t.Fatalf("outsider became a voter: %v", n)
		}
	}
}

// Reload (SIGHUP) swaps the certificate for new connections without a
// restart.
func TestCluster_TLSReload(t *testing.T) {
	ca, err := tlsutil.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := ca.WriteFiles(dir, "first", time.Hour, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, 1, func(i int, cfg *cluster.Config) { cfg.TLS = h })
	c.WaitLeader()
	subject := func() string {
		conn, err := tls.Dial("tcp", c.Nodes[0].APIAddr(), &tls.Config{RootCAs: caPool(ca), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := subject(); got != "first" {
		t.Fatalf("subject %q", got)
	}
	if _, err := ca.WriteFiles(dir, "second", time.Hour, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if got := subject(); got != "first" {
		t.Fatalf("subject %q before Reload", got)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := subject(); got != "second" {
		t.Fatalf("subject %q after Reload, want second", got)
	}
}

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
