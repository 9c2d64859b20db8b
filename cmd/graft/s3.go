package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/graft-cluster/graft/objstore/fakes3"
)

// runS3 serves the embedded S3-compatible store on its own: the one
// `graft dev` runs, over the same directory, so a flushed bucket can be
// read (graft volume read --object-store) with no node running, or shared
// by nodes started by hand.
func runS3(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("s3", "s3 [--dir DIR] [--addr HOST:PORT] [--bucket NAME] [--fault-admin]", stderr)
	dir := fs.String("dir", filepath.Join("graft-dev", "s3"), "data directory (graft dev keeps its store in DIR/s3)")
	addr := fs.String("addr", "127.0.0.1:7300", "address to listen on")
	bucket := fs.String("bucket", "graft", "bucket to serve (created if missing)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	latency := fs.Duration("latency", 0, "added to every request, to emulate a distant object store (benchmarks)")
	faultAdmin := fs.Bool("fault-admin", false, "serve "+fakes3.FaultPath+" to inject S3 errors (GET: state, PUT {\"rate\":0.5,\"status\":503,\"match\":\"/segments/\"}); for the consistency suite")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("s3: unexpected arguments %q", fs.Args())
	}
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv, err := fakes3.Serve(ctx, ln, *dir, *bucket, logger.With("component", "s3"))
	if err != nil {
		ln.Close()
		return err
	}
	srv.SetLatency(*latency)
	srv.SetFaultAdmin(*faultAdmin)
	fmt.Fprintf(stdout, "graft s3: serving bucket %s at %s (data: %s)\n", srv.Bucket(), srv.Endpoint(), srv.Dir())
	fmt.Fprintf(stdout, "object store URL: '%s'\n", srv.URL(""))
	fmt.Fprintln(stdout, "Ctrl-C stops it.")
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Close(cctx)
}
