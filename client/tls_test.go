package client_test

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/graft-cluster/graft/client"
)

// TLSHTTPClient speaks HTTP/1.1 over TLS verified against the pool, even
// to a server that offers h2 (its connections are tlsutil.CoalescedConns,
// which the transport cannot run HTTP/2 over; resp.TLS is then unset).
func TestTLSHTTPClient(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "plaintext", http.StatusBadRequest)
			return
		}
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	hc := client.TLSHTTPClient(pool)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "HTTP/1.1" || resp.TLS != nil {
		t.Fatalf("status %d, server saw %q, resp.TLS set %v: want 200, HTTP/1.1 over a coalesced TLS conn", resp.StatusCode, b, resp.TLS != nil)
	}
	if _, err := client.TLSHTTPClient(nil).Get(srv.URL); err == nil {
		t.Fatal("the system roots accepted the test server's certificate")
	}
}
