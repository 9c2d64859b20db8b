package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
)

// fastRetries retries at once, so tests of retries take no time.
func fastRetries(attempts int) objstore.Option {
	c := objstore.DefaultConfig()
	c.MaxAttempts = attempts
	c.MaxBackoff = 0
	return objstore.WithConfig(c)
}

// recorder remembers the requests a server saw.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
	status              int
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), sw.status})
		rec.mu.Unlock()
	})
}

func (rec *recorder) matching(method, query string) []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []recorded
	for _, r := range rec.reqs {
		if r.method == method && strings.Contains(r.query, query) {
			out = append(out, r)
		}
	}
	return out
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message></Error>`, code)
}

// gofakes3 honours If-None-Match: * on PUT: the header goes out and a
// second create gets 412 from the server itself.
func TestS3_PutIfAbsentUsesIfNoneMatch(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := s3test.StartHandler(t, rec.wrap)
	s := open(t, srv.URL("p"))
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "log/1", []byte("a")); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	if err := s.PutIfAbsent(ctx, "log/1", []byte("b")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second PutIfAbsent = %v, want ErrExists", err)
	}
	if err := s.Put(ctx, "plain", []byte("c")); err != nil {
		t.Fatal(err)
	}
	puts := rec.matching(http.MethodPut, "")
	if len(puts) != 3 {
		t.Fatalf("server saw %d PUTs, want 3", len(puts))
	}
	for i, want := range []struct {
		inm    string
		status int
	}{{"*", 200}, {"*", 412}, {"", 200}} {
		if got := puts[i].header.Get("If-None-Match"); got != want.inm || puts[i].status != want.status {
			t.Errorf("PUT #%d: If-None-Match %q, status %d; want %q, %d", i+1, got, puts[i].status, want.inm, want.status)
		}
	}
	if puts[0].path != "/"+s3test.Bucket+"/p/log/1" {
		t.Errorf("PUT path = %s, want path-style /%s/p/log/1", puts[0].path, s3test.Bucket)
	}
}

func TestS3_ConditionalConflictIsExists(t *testing.T) {
	t.Parallel()
	srv := s3test.StartHandler(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && r.Header.Get("If-None-Match") != "" {
				s3Error(w, http.StatusConflict, "ConditionalRequestConflict")
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	s := open(t, srv.URL("p"), fastRetries(3))
	if err := s.PutIfAbsent(t.Context(), "k", []byte("x")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("PutIfAbsent = %v, want ErrExists", err)
	}
}

// failFirst answers the first n requests of a method with a 500.
func failFirst(method string, n int64, seen *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == method && seen.Add(1) <= n {
				// Drain the body as a real server does before answering.
				_, _ = io.Copy(io.Discard, r.Body)
				s3Error(w, http.StatusInternalServerError, "InternalError")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestS3_RetriesTransientErrors(t *testing.T) {
	t.Parallel()
	t.Run("enough attempts", func(t *testing.T) {
		var puts atomic.Int64
		srv := s3test.StartHandler(t, failFirst(http.MethodPut, 2, &puts))
		s := open(t, srv.URL("p"), fastRetries(3))
		data := bytes.Repeat([]byte("segment"), 1000)
		if err := s.Put(t.Context(), "k", data); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got := puts.Load(); got != 3 {
			t.Fatalf("server saw %d PUTs, want 3", got)
		}
		// The retried body was rewound and sent whole.
		got, err := s.Get(t.Context(), "k")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get = %d bytes, %v; want %d bytes", len(got), err, len(data))
		}
	})
	t.Run("too few attempts", func(t *testing.T) {
		var puts atomic.Int64
		srv := s3test.StartHandler(t, failFirst(http.MethodPut, 2, &puts))
		s := open(t, srv.URL("p"), fastRetries(2))
		err := s.Put(t.Context(), "k", []byte("x"))
		if err == nil || !strings.Contains(err.Error(), "InternalError") {
			t.Fatalf("Put = %v, want the server's InternalError", err)
		}
		if got := puts.Load(); got != 2 {
			t.Fatalf("server saw %d PUTs, want 2", got)
		}
	})
}

func TestS3_ListPages(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := s3test.StartHandler(t, rec.wrap)
	c := objstore.DefaultConfig()
	c.ListPageSize = 10
	s := open(t, srv.URL("p"), objstore.WithConfig(c))
	for i := range 25 {
		if err := s.Put(t.Context(), fmt.Sprintf("k/%02d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := s.List(t.Context(), "k/")
	if err != nil || len(objs) != 25 || objs[24].Key != "k/24" {
		t.Fatalf("List = %d objects, %v; want 25 ending in k/24", len(objs), err)
	}
	lists := rec.matching(http.MethodGet, "list-type=2")
	if len(lists) != 3 {
		t.Fatalf("server saw %d ListObjectsV2 requests, want 3 pages of 10", len(lists))
	}
	for _, l := range lists {
		if !strings.Contains(l.query, "max-keys=10") {
			t.Errorf("list query %q lacks max-keys=10", l.query)
		}
	}
}

func TestS3_PrefixesIsolateStores(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	ctx := t.Context()
	a := open(t, srv.URL("tenant-a/graft"))
	b := open(t, srv.URL("tenant-b"))
	root := open(t, srv.URL(""))
	if err := a.Put(ctx, "volumes/v/log/1", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "volumes/v/log/1", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get(ctx, "volumes/v/log/1"); string(got) != "a" {
		t.Fatalf("a Get = %q", got)
	}
	objs, err := root.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tenant-a/graft/volumes/v/log/1", "tenant-b/volumes/v/log/1"}
	if len(objs) != 2 || objs[0].Key != want[0] || objs[1].Key != want[1] {
		t.Fatalf("bucket holds %+v, want keys %q", objs, want)
	}
	if objs, _ := b.List(ctx, ""); len(objs) != 1 || objs[0].Key != "volumes/v/log/1" {
		t.Fatalf("b List = %+v, want its own key, relative", objs)
	}
}

// A server that ignores Range answers 200 with the whole object; GetRange
// still returns the range.
func TestS3_RangeIgnoredByServer(t *testing.T) {
	t.Parallel()
	srv := s3test.StartHandler(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Range")
			next.ServeHTTP(w, r)
		})
	})
	s := open(t, srv.URL("p"))
	if err := s.Put(t.Context(), "k", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRange(t.Context(), "k", 3, 4)
	if err != nil || string(got) != "3456" {
		t.Fatalf("GetRange = %q, %v; want 3456", got, err)
	}
	if _, err := s.GetRange(t.Context(), "k", 8, 4); !errors.Is(err, objstore.ErrRange) {
		t.Fatalf("GetRange past the end = %v, want ErrRange", err)
	}
}

func TestS3_MissingBucketIsNotNotFound(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	srv.Bucket = "no-such-bucket"
	s := open(t, srv.URL("p"), fastRetries(1))
	_, err := s.Get(t.Context(), "k")
	if err == nil || errors.Is(err, objstore.ErrNotFound) || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Fatalf("Get = %v, want NoSuchBucket, not ErrNotFound", err)
	}
}

func TestS3_ServerDown(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: bind one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := open(t, "s3://b/p?endpoint=http://"+addr+"&access_key=a&secret_key=s", fastRetries(2))
	if err := s.Put(t.Context(), "k", []byte("x")); err == nil {
		t.Fatal("Put to a server that is down succeeded")
	}
}

// A server that never answers: the caller's deadline ends the call.
func TestS3_HungServerHonoursDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := s3test.StartHandler(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	s := open(t, srv.URL("p"), fastRetries(3))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want DeadlineExceeded", err)
	}
}

type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// A caller's HTTP client carries the requests. (It must also work when
// AWS_CA_BUNDLE is set, which the SDK applies only to its own client.)
func TestS3_CustomHTTPClient(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	tr := &countingTransport{next: http.DefaultTransport}
	s := open(t, srv.URL("p"), objstore.WithHTTPClient(&http.Client{Transport: tr}))
	if err := s.Put(t.Context(), "k", []byte("x")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if tr.n.Load() != 1 {
		t.Fatalf("custom client sent %d requests, want 1", tr.n.Load())
	}
}
