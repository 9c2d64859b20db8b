// Package tlsutil owns graft's TLS material: a certificate, its key and the
// CA pool read from files, held so that Reload (on SIGHUP) swaps them under
// running listeners and clients without a restart, and the tls.Configs built
// from them for client links (HTTPS with HTTP/2 via ALPN, HTTP/1.1 still
// served) and peer links (mutual TLS between members). It also generates a
// throwaway CA and certificates for `graft dev --tls` and tests.
//
// Invariants: a Reload that fails leaves the previous material in place; a
// config built here always reads the current material at handshake time,
// so connections opened after a Reload use the new certificate and CA.
// It imports only the standard library.
package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

// Errors returned by the package.
var (
	// ErrNoCA means a CA file held no PEM certificate.
	ErrNoCA = errors.New("tlsutil: no CA certificate in file")
	// ErrIncomplete means a certificate was given without its key, or the
	// reverse.
	ErrIncomplete = errors.New("tlsutil: --tls-cert and --tls-key go together")
)

// Files names TLS material on disk. Cert and Key are a PEM certificate
// (chain) and its private key; CA is a PEM bundle of the CAs whose
// certificates peers (and, when given, clients) must present.
type Files struct {
	Cert string
	Key  string
	CA   string
}

// Enabled reports whether any file is named.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Validate checks that Cert and Key come together.
func (f Files) Validate() error {
	if (f.Cert == "") != (f.Key == "") {
		return ErrIncomplete
	}
	return nil
}

type material struct {
	cert *tls.Certificate
	pool *x509.CertPool
}

// Holder holds the current material and swaps it on Reload. It is safe
// for concurrent use.
type Holder struct {
	files Files
	cur   atomic.Pointer[material]

	// Completed handshakes of configs built here, server and client side
	// (Handshakes): connections are meant to be reused, so these grow with
	// connections, never with calls.
	serverHandshakes, clientHandshakes atomic.Uint64
}

// Handshakes returns how many TLS handshakes configs of h completed as a
// server (ServerConfig) and as a client (ClientConfig, DialTLSContext).
func (h *Holder) Handshakes() (server, client uint64) {
	return h.serverHandshakes.Load(), h.clientHandshakes.Load()
}

// Load reads f into a Holder.
func Load(f Files) (*Holder, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	h := &Holder{files: f}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload re-reads the files. On error the previous material stays.
func (h *Holder) Reload() error {
	m := &material{}
	if h.files.Cert != "" {
		c, err := tls.LoadX509KeyPair(h.files.Cert, h.files.Key)
		if err != nil {
			return fmt.Errorf("tlsutil: load %s and %s: %w", h.files.Cert, h.files.Key, err)
		}
		m.cert = &c
	}
	if h.files.CA != "" {
		p, err := LoadPool(h.files.CA)
		if err != nil {
			return err
		}
		m.pool = p
	}
	h.cur.Store(m)
	return nil
}

// Files returns the files the holder reads.
func (h *Holder) Files() Files { return h.files }

// LoadPool reads a PEM CA bundle.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: read CA: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: %s", ErrNoCA, path)
	}
	return p, nil
}

// ServerConfig returns the config of a listener. peer selects the member
// link (Raft): a client certificate chained to the CA is required. On a
// client link (the API) a client certificate is verified when given (a
// member forwarding) and not required (clients authenticate with tokens).
// ALPN offers h2 then http/1.1.
func (h *Holder) ServerConfig(peer bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := h.cur.Load()
			if m.cert == nil {
				return nil, errors.New("tlsutil: no certificate configured")
			}
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*m.cert},
				NextProtos:   []string{"h2", "http/1.1"},
				ClientCAs:    m.pool,
				ClientAuth:   tls.VerifyClientCertIfGiven,
			}
			if peer {
				c.ClientAuth = tls.RequireAndVerifyClientCert
				c.NextProtos = nil
			}
			// Called once per handshake that passed certificate checks.
			c.VerifyConnection = func(tls.ConnectionState) error {
				h.serverHandshakes.Add(1)
				return nil
			}
			return c, nil
		},
	}
}

// ClientConfig returns the config of a member's outgoing peer link to
// host (Raft and forwarding): it presents the current certificate and
// verifies the server's certificate for host against the current CA pool
// (re-read on Reload, which a static RootCAs could not follow).
func (h *Holder) ClientConfig(host string) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: host,
		NextProtos: []string{"h2", "http/1.1"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if m := h.cur.Load(); m.cert != nil {
				return m.cert, nil
			}
			return &tls.Certificate{}, nil
		},
		// Verification happens in VerifyConnection against the current
		// pool; InsecureSkipVerify only turns off the static check.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := verifyServer(h.cur.Load().pool, host, cs); err != nil {
				return err
			}
			h.clientHandshakes.Add(1)
			return nil
		},
	}
	return c
}

// DialTLSContext dials addr and runs the client handshake of a peer link
// (ClientConfig of addr's host); an http.Transport of peer links uses it.
func (h *Holder) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, h.ClientConfig(host))
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// verifyServer does what crypto/tls does with RootCAs, against pool.
func verifyServer(pool *x509.CertPool, host string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsutil: server sent no certificate")
	}
	if host == "" {
		return errors.New("tlsutil: no server name to verify")
	}
	// x509 matches IP SANs when DNSName is an IP literal.
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), DNSName: host}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tlsutil: verify server certificate: %w", err)
	}
	return nil
}
