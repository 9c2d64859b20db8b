package s3test_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
)

// The server itself enforces If-None-Match: * on PUT, at the HTTP level,
// with no SDK involved.
func TestStart_HonoursIfNoneMatch(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	put := func(body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut,
			srv.Endpoint+"/"+srv.Bucket+"/log/1", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("If-None-Match", "*")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := put("first"); got != http.StatusOK {
		t.Fatalf("first conditional PUT: status %d, want 200", got)
	}
	if got := put("second"); got != http.StatusPreconditionFailed {
		t.Fatalf("second conditional PUT: status %d, want 412", got)
	}
	resp, err := http.Get(srv.Endpoint + "/" + srv.Bucket + "/log/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "first" {
		t.Fatalf("object holds %q, want first", b)
	}
}

func TestURL_OpensEmptyStore(t *testing.T) {
	t.Parallel()
	s, err := objstore.Open(t.Context(), s3test.URL(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if objs, err := s.List(t.Context(), ""); err != nil || len(objs) != 0 {
		t.Fatalf("List = %+v, %v; want an empty store", objs, err)
	}
	if err := s.Put(t.Context(), "k", []byte("x")); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

// The proxy passes traffic, swallows it while blackholed (the client sees
// no answer and no reset), and passes new connections after the heal.
func TestProxy_BlackholeAndHeal(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	p := s3test.StartProxy(t, srv.Endpoint)
	get := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Endpoint+"/"+srv.Bucket, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := get(10 * time.Second); err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	p.Blackhole()
	if err := get(200 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET through the blackhole = %v, want the caller's deadline", err)
	}
	p.Heal()
	if err := get(10 * time.Second); err != nil {
		t.Fatalf("GET after the heal: %v", err)
	}
}
