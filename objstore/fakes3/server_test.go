package fakes3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/fakes3"
	"github.com/graft-cluster/graft/objstore/storetest"
)

const bucket = "graft"

// listen returns a listener on a free loopback port.
func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// serve starts a server on a free loopback port keeping its data in dir;
// the test's cleanup closes it.
func serve(t testing.TB, dir string) *fakes3.Server {
	t.Helper()
	s, err := fakes3.Serve(t.Context(), listen(t, "127.0.0.1:0"), dir, bucket, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func open(t testing.TB, url string) objstore.Store {
	t.Helper()
	st, err := objstore.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// The server passes the objstore conformance suite through the real S3
// backend, PutIfAbsent atomicity and ranged reads included.
func TestServe_Conformance(t *testing.T) {
	t.Parallel()
	srv := serve(t, t.TempDir())
	n := 0
	storetest.Run(t, func(t *testing.T) objstore.Store {
		n++ // subtests run one at a time: each gets a fresh prefix
		st, err := objstore.Open(t.Context(), srv.URL(fmt.Sprintf("conformance/%d", n)))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return st
	})
}

func TestServe_PersistsAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := bytes.Repeat([]byte("graft"), 1000)

	first, err := fakes3.Serve(t.Context(), listen(t, "127.0.0.1:0"), dir, bucket, nil)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	st := open(t, first.URL("p"))
	if err := st.PutIfAbsent(t.Context(), "volumes/v/segments/s", data); err != nil {
		t.Fatalf("PutIfAbsent: %v", err)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v, want the first's nil", err)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(first.Endpoint(), "http://"), time.Second); err == nil {
		t.Errorf("closed server still accepts connections")
	}

	// The bucket exists already; Serve keeps it and its objects.
	second := serve(t, dir)
	st = open(t, second.URL("p"))
	got, err := st.Get(t.Context(), "volumes/v/segments/s")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after restart = %d bytes, %v; want the %d bytes written", len(got), err, len(data))
	}
	if err := st.PutIfAbsent(t.Context(), "volumes/v/segments/s", []byte("other")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("PutIfAbsent over a persisted object = %v, want ErrExists", err)
	}
}

func TestServe_DirLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serve(t, dir)
	ln := listen(t, "127.0.0.1:0")
	_, err := fakes3.Serve(t.Context(), ln, dir, bucket, nil)
	if !errors.Is(err, fakes3.ErrDirLocked) {
		t.Fatalf("second Serve on one dir = %v, want ErrDirLocked", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("failed Serve left its listener open")
	}
}

func TestServe_Errors(t *testing.T) {
	t.Parallel()
	t.Run("invalid bucket", func(t *testing.T) {
		t.Parallel()
		_, err := fakes3.Serve(t.Context(), listen(t, "127.0.0.1:0"), t.TempDir(), "No_Such", nil)
		if !errors.Is(err, fakes3.ErrInvalidBucket) {
			t.Fatalf("Serve = %v, want ErrInvalidBucket", err)
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := fakes3.Serve(ctx, listen(t, "127.0.0.1:0"), t.TempDir(), bucket, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve = %v, want context.Canceled", err)
		}
	})
	t.Run("data dir is a file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := fakes3.Serve(t.Context(), listen(t, "127.0.0.1:0"), file, bucket, nil); err == nil {
			t.Fatalf("Serve with a file as data dir succeeded")
		}
	})
}

// A wildcard listener gets a loopback endpoint that clients can dial.
func TestServer_EndpointOfWildcardListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Skipf("no IPv4 wildcard listener: %v", err)
	}
	s, err := fakes3.Serve(t.Context(), ln, t.TempDir(), bucket, nil)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	defer s.Close(context.Background())
	port := ln.Addr().(*net.TCPAddr).Port
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); s.Endpoint() != want {
		t.Fatalf("Endpoint = %s, want %s", s.Endpoint(), want)
	}
}

// Plain HTTP clients (curl) can list buckets and objects, read ranges, and
// create conditionally.
func TestServe_HTTP(t *testing.T) {
	t.Parallel()
	srv := serve(t, t.TempDir())
	do := func(method, path string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.Endpoint()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ifAbsent := map[string]string{"If-None-Match": "*"}
	if code, body := do(http.MethodPut, "/graft/a/b", ifAbsent, "0123456789"); code != http.StatusOK {
		t.Fatalf("conditional PUT: %d %s", code, body)
	}
	if code, _ := do(http.MethodPut, "/graft/a/b", ifAbsent, "again"); code != http.StatusPreconditionFailed {
		t.Fatalf("second conditional PUT: status %d, want 412", code)
	}
	if code, body := do(http.MethodGet, "/graft/a/b", map[string]string{"Range": "bytes=2-5"}, ""); code != http.StatusPartialContent || body != "2345" {
		t.Fatalf("ranged GET = %d %q, want 206 \"2345\"", code, body)
	}
	if code, body := do(http.MethodGet, "/", nil, ""); code != http.StatusOK || !strings.Contains(body, "<Name>graft</Name>") {
		t.Fatalf("ListBuckets = %d %s", code, body)
	}
	if code, body := do(http.MethodGet, "/graft?list-type=2&prefix=a/", nil, ""); code != http.StatusOK || !strings.Contains(body, "<Key>a/b</Key>") {
		t.Fatalf("ListObjectsV2 = %d %s", code, body)
	}
}

func TestStoreURL(t *testing.T) {
	t.Parallel()
	got := fakes3.StoreURL("http://127.0.0.1:7300", "graft", "")
	want := "s3://graft/?access_key=graft-dev&endpoint=http%3A%2F%2F127.0.0.1%3A7300&path_style=true&region=us-east-1&secret_key=graft-dev-secret"
	if got != want {
		t.Fatalf("StoreURL =\n %s\nwant\n %s", got, want)
	}
	if _, err := objstore.Open(t.Context(), got); err != nil {
		t.Fatalf("objstore.Open(StoreURL) = %v", err)
	}
}
