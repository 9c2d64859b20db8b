// Package s3test runs an S3-protocol server inside the test process, so
// tests exercise the real S3 backend (aws-sdk-go-v2, HTTP, signing, error
// mapping) without a network or credentials.
//
// The server is gofakes3 with its in-memory backend on a real TCP listener
// on 127.0.0.1. It does not check signatures; it does honour
// If-None-Match: * on PUT (412 PreconditionFailed), atomically.
//
// StartProxy puts a TCP proxy in front of a server, to blackhole the path
// or hold one connection's responses (network faults an HTTP handler
// cannot fake); Server.URLVia addresses the server through it.
//
// URL also lets a test run against an independent S3-compatible server: set
// GRAFT_TEST_S3_URL to an s3:// URL (see objstore.Open) and every test gets
// a fresh prefix below it, emptied on cleanup.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/graft-cluster/graft/objstore"
)

const (
	// EnvURL names the environment variable that points URL at an
	// independent S3-compatible server instead of an in-process one.
	EnvURL = "GRAFT_TEST_S3_URL"
	// Bucket is the bucket Start creates.
	Bucket = "graft-test"
	// AccessKey and SecretKey are the static credentials in the URLs a
	// Server returns; gofakes3 accepts any.
	AccessKey = "graft-test-key"
	SecretKey = "graft-test-secret"
)

// Server is a running in-process S3 server holding one bucket.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:port.
	Endpoint string
	// Bucket is the bucket the server was started with.
	Bucket string
	// Backend is the server's storage, to inspect or tamper with objects
	// behind the S3 API's back.
	Backend *s3mem.Backend
}

// Start starts a server with an empty bucket named Bucket. tb.Cleanup
// stops it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartHandler(tb, nil)
}

// StartHandler is Start with the server's HTTP handler passed through wrap
// (when not nil), to inject faults at the HTTP level: 5xx responses, slow
// or dropped requests.
func StartHandler(tb testing.TB, wrap func(http.Handler) http.Handler) *Server {
	tb.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(Bucket); err != nil {
		tb.Fatalf("s3test: create bucket: %v", err)
	}
	var h http.Handler = gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h) // listens on 127.0.0.1:0
	tb.Cleanup(srv.Close)
	return &Server{Endpoint: srv.URL, Bucket: Bucket, Backend: backend}
}

// URL returns the s3:// URL of a store under prefix in the server's bucket.
func (s *Server) URL(prefix string) string { return s.url(s.Endpoint, prefix) }

// URLVia is URL through a proxy in front of the server (StartProxy).
func (s *Server) URLVia(p *Proxy, prefix string) string { return s.url(p.Endpoint, prefix) }

func (s *Server) url(endpoint, prefix string) string {
	q := url.Values{
		"endpoint":   {endpoint},
		"region":     {"us-east-1"},
		"path_style": {"true"},
		"access_key": {AccessKey},
		"secret_key": {SecretKey},
	}
	u := url.URL{Scheme: "s3", Host: s.Bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	return u.String()
}

// URL returns the s3:// URL of an empty store for one test: below a fresh
// prefix of the server GRAFT_TEST_S3_URL names when it is set, else in a
// new in-process server.
func URL(tb testing.TB) string {
	tb.Helper()
	ext := os.Getenv(EnvURL)
	if ext == "" {
		return Start(tb).URL("test")
	}
	u, err := url.Parse(ext)
	if err != nil || u.Scheme != "s3" {
		tb.Fatalf("s3test: %s is not an s3:// URL", EnvURL)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	u.Path = path.Join("/", u.Path, "graft-test-"+hex.EncodeToString(b[:]))
	raw := u.String()
	tb.Cleanup(func() { empty(tb, raw) })
	return raw
}

// empty deletes every object under an external test prefix.
func empty(tb testing.TB, raw string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := objstore.Open(ctx, raw)
	if err != nil {
		tb.Errorf("s3test: cleanup: %v", err)
		return
	}
	defer s.Close()
	objs, err := s.List(ctx, "")
	if err != nil {
		tb.Errorf("s3test: cleanup: %v", err)
		return
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			tb.Errorf("s3test: cleanup: %v", err)
			return
		}
	}
}
