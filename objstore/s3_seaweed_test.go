package objstore_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/s3test"
	"github.com/graft-cluster/graft/objstore/storetest"
)

// The S3 backend against SeaweedFS, an S3 server we did not write, that
// checks signatures: the whole conformance suite, PutIfAbsent atomicity
// included. Needs the weed binary (make test builds it; see
// s3test.StartSeaweed).
func TestSeaweed_Conformance(t *testing.T) {
	t.Parallel()
	srv := s3test.StartSeaweed(t)
	storetest.Run(t, func(t *testing.T) objstore.Store { return open(t, srv.FreshURL()) })
}

// statusRecorder is an HTTP transport that remembers the status of every
// conditional PUT.
type statusRecorder struct {
	mu       sync.Mutex
	statuses []int
}

func (r *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut && req.Header.Get("If-None-Match") == "*" {
		r.mu.Lock()
		r.statuses = append(r.statuses, resp.StatusCode)
		r.mu.Unlock()
	}
	return resp, err
}

// SeaweedFS itself refuses the second create with 412: ErrExists comes from
// the server, not from anything the client checked.
func TestSeaweed_PutIfAbsentGets412(t *testing.T) {
	t.Parallel()
	srv := s3test.StartSeaweed(t)
	rec := &statusRecorder{}
	s := open(t, srv.FreshURL(), objstore.WithMaxAttempts(1),
		objstore.WithHTTPClient(&http.Client{Transport: rec}))
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "log/1", []byte("a")); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	if err := s.PutIfAbsent(ctx, "log/1", []byte("b")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second PutIfAbsent = %v, want ErrExists", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.statuses) != 2 || rec.statuses[0] != http.StatusOK || rec.statuses[1] != http.StatusPreconditionFailed {
		t.Fatalf("conditional PUT statuses = %v, want [200 412]", rec.statuses)
	}
	if got, err := s.Get(ctx, "log/1"); err != nil || string(got) != "a" {
		t.Fatalf("Get = %q, %v; want the first writer's a", got, err)
	}
}

// withKeys returns raw with its access and secret keys replaced.
func withKeys(t *testing.T, raw, access, secret string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("access_key", access)
	q.Set("secret_key", secret)
	u.RawQuery = q.Encode()
	return u.String()
}

// SeaweedFS checks SigV4 signatures: a wrong secret or an unknown access
// key is refused with a clear S3 error, never read as a missing object.
func TestSeaweed_WrongCredentialsAreRefused(t *testing.T) {
	t.Parallel()
	srv := s3test.StartSeaweed(t)
	raw := srv.FreshURL()
	good := open(t, raw)
	if err := good.Put(t.Context(), "k", []byte("x")); err != nil {
		t.Fatalf("Put with the right keys: %v", err)
	}
	for _, tc := range []struct {
		name, access, secret, code string
	}{
		{"wrong secret key", s3test.SeaweedAccessKey, "not-the-secret", "SignatureDoesNotMatch"},
		{"unknown access key", "no-such-key", s3test.SeaweedSecretKey, "InvalidAccessKeyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := open(t, withKeys(t, raw, tc.access, tc.secret), objstore.WithMaxAttempts(1))
			ctx := t.Context()
			check := func(op string, err error) {
				t.Helper()
				if err == nil || errors.Is(err, objstore.ErrNotFound) || !strings.Contains(err.Error(), tc.code) ||
					!strings.Contains(err.Error(), "403") {
					t.Errorf("%s = %v, want a 403 %s", op, err, tc.code)
				}
			}
			_, err := bad.Get(ctx, "k")
			check("Get", err)
			_, err = bad.Get(ctx, "missing")
			check("Get of a missing key", err)
			check("Put", bad.Put(ctx, "k", []byte("forged")))
			_, err = bad.List(ctx, "")
			check("List", err)
		})
	}
	if got, err := good.Get(t.Context(), "k"); err != nil || string(got) != "x" {
		t.Fatalf("Get = %q, %v; want x untouched", got, err)
	}
}
