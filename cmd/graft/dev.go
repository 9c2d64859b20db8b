package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/graft-cluster/graft/cluster/devcluster"
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
			printBanner(stdout, c, cfg.Dir)
		}
	}
	return <-done
}

// printBanner tells where the ready cluster serves and keeps its state.
func printBanner(w io.Writer, c *devcluster.Cluster, dir string) {
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
