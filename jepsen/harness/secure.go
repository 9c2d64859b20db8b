package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/tlsutil"
)

// security is a Secure cluster's material: a throwaway CA and certificate
// every node and edge serves with, and an admin token every client of the
// harness and the workload sends.
type security struct {
	files tlsutil.Files
	pool  *x509.CertPool
	pub   string // the signing key's public half, the nodes' --auth-key
	token string
}

// setupSecurity generates the CA, certificate and signing key in Dir
// (Config.Secure), issues the run's admin token and points the harness's
// own HTTP client at the CA.
func (c *Cluster) setupSecurity() error {
	if !c.cfg.Secure {
		return nil
	}
	f, _, err := tlsutil.DevFiles(filepath.Join(c.cfg.Dir, "tls"))
	if err != nil {
		return fmt.Errorf("harness: tls: %w", err)
	}
	pool, err := tlsutil.LoadPool(f.CA)
	if err != nil {
		return err
	}
	key := filepath.Join(c.cfg.Dir, "auth-key")
	priv, err := auth.GenerateKey(key)
	if err != nil {
		return fmt.Errorf("harness: auth key: %w", err)
	}
	tok, _, err := auth.Issue(priv, auth.IssueOptions{Scopes: []auth.Scope{auth.ScopeAdmin}, Volumes: "*", TTL: 24 * time.Hour, ID: "jepsen"})
	if err != nil {
		return err
	}
	c.sec = &security{files: f, pool: pool, pub: key + ".pub", token: tok}
	c.http.Transport.(*http.Transport).TLSClientConfig = c.TLSConfig()
	return nil
}

// Scheme is "https://" for a Secure cluster, else "http://".
func (c *Cluster) Scheme() string {
	if c.sec != nil {
		return "https://"
	}
	return "http://"
}

// TLSConfig trusts a Secure cluster's CA; nil otherwise.
func (c *Cluster) TLSConfig() *tls.Config {
	if c.sec == nil {
		return nil
	}
	return &tls.Config{RootCAs: c.sec.pool, MinVersion: tls.VersionTLS12}
}

// ClientOptions are what a graft client of the cluster needs: the CA and
// the admin token of a Secure cluster; none otherwise.
func (c *Cluster) ClientOptions() []client.Option {
	if c.sec == nil {
		return nil
	}
	return []client.Option{client.WithRootCAs(c.sec.pool), client.WithToken(c.sec.token)}
}

// connectOptions are the harness's own Connect clients' options.
func (c *Cluster) connectOptions() []connect.ClientOption {
	if c.sec == nil {
		return nil
	}
	return []connect.ClientOption{connect.WithInterceptors(auth.ForwardCredential(auth.Bearer(c.sec.token)))}
}

// nodeSecurityArgs are a Secure node's TLS and token flags.
func (c *Cluster) nodeSecurityArgs() []string {
	if c.sec == nil {
		return nil
	}
	f := c.sec.files
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA, "--auth-key", c.sec.pub}
}

// edgeSecurityArgs are a Secure edge's: it serves HTTPS, trusts the CA
// upstream, checks tokens and has its own for shared watch streams.
func (c *Cluster) edgeSecurityArgs() []string {
	if c.sec == nil {
		return nil
	}
	f := c.sec.files
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--ca", f.CA, "--auth-key", c.sec.pub, "--upstream-token", c.sec.token}
}
