package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/cluster/devcluster"
	"github.com/graft-cluster/graft/tlsutil"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := devcluster.DefaultConfig()
	fs := newFlags("dev", "dev [--dir DIR] [--port-base N] [--object-store URL] [-- NODE FLAGS...]", stderr)
	fs.StringVar(&cfg.Dir, "dir", "graft-dev", "state directory; node i keeps its data and node.log in DIR/n{i}, the embedded S3 server its objects in DIR/s3 (kept across runs)")
	fs.IntVar(&cfg.PortBase, "port-base", cfg.PortBase, "node i serves its API on port-base+i and Raft on port-base+100+i; the embedded S3 server listens on port-base+300")
	fs.StringVar(&cfg.ObjectStore, "object-store", "", "object store URL the nodes flush to, instead of the embedded S3 server (see graft node --help)")
	fs.DurationVar(&cfg.S3Latency, "s3-latency", 0, "added to every request of the embedded S3 server, to emulate a distant object store (benchmarks)")
	fs.IntVar(&cfg.EdgePort, "edge-port", cfg.EdgePort, "port of the edge read-through cache in front of the nodes (0: port-base+0; -1: no edge)")
	edgeCache := byteSize(cfg.EdgeCacheBytes)
	fs.Var(&edgeCache, "edge-cache-bytes", "bound of the edge's cache (suffixes KiB, MiB, GiB)")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes")
	fs.StringVar(&cfg.Host, "host", cfg.Host, "loopback host to bind")
	logLevel := fs.String("log-level", "info", "log level of the supervisor: debug, info, warn, error")
	useTLS := fs.Bool("tls", false, "serve HTTPS and run mutual TLS between the nodes with a throwaway CA and certificate generated in DIR/tls (reused while valid)")
	useAuth := fs.Bool("auth", false, "require bearer tokens: generate a signing key in DIR/auth/key (reused) and print an admin token")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg.ExtraArgs = fs.Args() // everything after "--" goes to every node
	cfg.EdgeCacheBytes = int64(edgeCache)
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	cfg.Logger = logger.With("component", "dev")
	cfg.LogOutput = stderr
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return err
	}
	var sec devSecurity
	if *useTLS {
		if cfg.TLS, sec.tlsCreated, err = tlsutil.DevFiles(filepath.Join(cfg.Dir, "tls")); err != nil {
			return fmt.Errorf("dev --tls: %w", err)
		}
	}
	if *useAuth {
		if sec.authKey, sec.adminToken, err = devAuth(filepath.Join(cfg.Dir, "auth")); err != nil {
			return fmt.Errorf("dev --auth: %w", err)
		}
		cfg.AuthKey = sec.authKey
	}
	c, err := devcluster.New(cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// Wait for the nodes, unless Run fails first (say, the S3 port is taken).
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- c.WaitReady(rctx) }()
	select {
	case err := <-done:
		cancel()
		<-ready
		return err
	case err := <-ready:
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("cluster did not become ready", "err", err)
			}
		} else {
			printBanner(stdout, c, cfg, sec)
		}
	}
	return <-done
}

// printBanner tells where the ready cluster serves and keeps its state.
func printBanner(w io.Writer, c *devcluster.Cluster, cfg devcluster.Config, sec devSecurity) {
	dir := cfg.Dir
	eps, ids := c.Endpoints(), c.NodeIDs()
	fmt.Fprintf(w, "graft dev: %d nodes ready, state in %s\n", len(eps), dir)
	for i, e := range eps {
		fmt.Fprintf(w, "  %s  %s  (log: %s)\n", ids[i], e, filepath.Join(dir, ids[i], "node.log"))
	}
	if e := c.EdgeEndpoint(); e != "" {
		fmt.Fprintf(w, "  edge  %s  (read-through cache of the nodes and the bucket; metrics: %s/metrics)\n", e, e)
	}
	s3, embedded := c.EmbeddedS3()
	if embedded {
		fmt.Fprintf(w, "  s3  %s  bucket %s  (data: %s)\n", s3.Endpoint, s3.Bucket, s3.Dir)
	} else {
		fmt.Fprintf(w, "  object store  %s\n", redactURL(c.ObjectStore()))
	}
	fmt.Fprintf(w, "try: curl -s -H 'Content-Type: application/json' -d '{}' %s/graft.v1.ClusterService/Status\n", eps[0])
	if embedded {
		fmt.Fprintf(w, "     curl -s '%s/%s?list-type=2'\n", s3.Endpoint, s3.Bucket)
		fmt.Fprintf(w, "     graft volume read VID --page 1 --object-store '%s'\n", c.ObjectStore())
	}
	printSecurity(w, c, cfg, sec)
	fmt.Fprintf(w, "status page: open %s/ in a browser (every node and the edge serve one at /)\n", eps[0])
	fmt.Fprintln(w, "Ctrl-C stops the cluster.")
}

// redactURL hides the secrets among an object store URL's parameters.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	redacted := false
	for _, k := range []string{"secret_key", "session_token"} {
		if q.Has(k) {
			q.Set(k, "REDACTED")
			redacted = true
		}
	}
	if !redacted {
		return raw // re-encoding would turn mem:// into mem:
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// devSecurity is what `graft dev --tls --auth` set up.
type devSecurity struct {
	tlsCreated bool
	authKey    string // DIR/auth/key, "" without --auth
	adminToken string
}

// devAuth returns dir/key (generated on first use) and a fresh admin token
// signed with it, valid for a day.
func devAuth(dir string) (keyPath, token string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	keyPath = filepath.Join(dir, "key")
	priv, err := auth.LoadPrivateKey(keyPath)
	if err != nil {
		if _, serr := os.Stat(keyPath); serr == nil {
			return "", "", err // there, but not a key: do not overwrite
		}
		if priv, err = auth.GenerateKey(keyPath); err != nil {
			return "", "", err
		}
	}
	token, _, err = auth.Issue(priv, auth.IssueOptions{Scopes: []auth.Scope{auth.ScopeAdmin}, Volumes: "*", TTL: 24 * time.Hour})
	return keyPath, token, err
}

// printSecurity says whether TLS and auth are on, and how to use them.
func printSecurity(w io.Writer, c *devcluster.Cluster, cfg devcluster.Config, sec devSecurity) {
	ep := c.Endpoints()[0]
	caFlag, curlCA := "", ""
	if cfg.TLS.Enabled() {
		what := "reused"
		if sec.tlsCreated {
			what = "generated"
		}
		fmt.Fprintf(w, "tls: on (throwaway CA %s in %s; never use it in production)\n", what, filepath.Dir(cfg.TLS.CA))
		caFlag, curlCA = " --ca "+cfg.TLS.CA, " --cacert "+cfg.TLS.CA
		fmt.Fprintf(w, "     graft cluster status --endpoint %s%s\n", ep, caFlag)
	} else {
		fmt.Fprintln(w, "tls: off (plaintext; --tls generates a throwaway CA)")
	}
	if sec.authKey == "" {
		fmt.Fprintln(w, "auth: off (anyone who reaches these ports may commit, read or remove nodes; --auth turns tokens on)")
		return
	}
	fmt.Fprintf(w, "auth: on (signing key %s; issue more: graft token issue --key %s --scope write --volumes PREFIX --ttl 24h)\n", sec.authKey, sec.authKey)
	fmt.Fprintf(w, "admin token (24h):\n  export %s=%s\n", TokenEnv, sec.adminToken)
	fmt.Fprintf(w, "     graft cluster status --endpoint %s%s   (reads $%s)\n", ep, caFlag, TokenEnv)
	fmt.Fprintf(w, "     curl -s%s -H \"Authorization: Bearer $%s\" -H 'Content-Type: application/json' -d '{}' %s/graft.v1.ClusterService/Status\n", curlCA, TokenEnv, ep)
}
