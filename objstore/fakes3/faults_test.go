package fakes3_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/fakes3"
)

// Injected errors reach the S3 client as S3 errors, only for the paths
// they match, and are counted.
func TestServer_SetFaults(t *testing.T) {
	t.Parallel()
	srv := serve(t, t.TempDir())
	st, err := objstore.Open(t.Context(), srv.URL("f"), objstore.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := srv.SetFaults(fakes3.Faults{Rate: 1, Status: http.StatusServiceUnavailable, Match: "/segments/"}); err != nil {
		t.Fatal(err)
	}
	err = st.Put(t.Context(), "v/segments/a", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("Put under 503 faults = %v, want a SlowDown error", err)
	}
	if err := st.Put(t.Context(), "v/log/a", []byte("x")); err != nil {
		t.Fatalf("Put outside the matched path = %v, want nil", err)
	}
	if got := srv.FaultStats(); got.Injected != 1 || got.Requests != 2 {
		t.Errorf("FaultStats = %+v, want 1 injected of 2 requests", got)
	}
	if err := srv.SetFaults(fakes3.Faults{Rate: 1, Status: http.StatusInternalServerError}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(t.Context(), "v/log/a"); err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("Get under 500 faults = %v, want an InternalError error", err)
	}
	if err := srv.SetFaults(fakes3.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(t.Context(), "v/segments/a", []byte("x")); err != nil {
		t.Fatalf("Put after faults off = %v", err)
	}
	for _, bad := range []fakes3.Faults{{Rate: 2, Status: 500}, {Rate: -1}, {Rate: 0.5, Status: 404}} {
		if err := srv.SetFaults(bad); !errors.Is(err, fakes3.ErrInvalidFaults) {
			t.Errorf("SetFaults(%+v) = %v, want ErrInvalidFaults", bad, err)
		}
	}
}

// The fault endpoint exists only when turned on, and sets and reports the
// faults over HTTP.
func TestServer_FaultAdmin(t *testing.T) {
	t.Parallel()
	srv := serve(t, t.TempDir())
	do := func(method, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.Endpoint()+fakes3.FaultPath, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do(http.MethodPut, `{"rate":1,"status":503}`); code == http.StatusOK {
		t.Fatalf("fault endpoint answered while off: %d %s", code, body)
	}
	if got := srv.FaultStats(); got.Rate != 0 {
		t.Fatalf("faults set through a disabled endpoint: %+v", got)
	}
	srv.SetFaultAdmin(true)
	code, body := do(http.MethodPut, `{"rate":0.5,"status":500,"match":"/segments/"}`)
	if code != http.StatusOK {
		t.Fatalf("PUT faults = %d %s", code, body)
	}
	var st fakes3.FaultStats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	want := fakes3.Faults{Rate: 0.5, Status: 500, Match: "/segments/"}
	if st.Faults != want || srv.FaultStats().Faults != want {
		t.Fatalf("faults after PUT = %+v (server %+v), want %+v", st.Faults, srv.FaultStats().Faults, want)
	}
	if code, body := do(http.MethodPut, `{"rate":3}`); code != http.StatusBadRequest {
		t.Fatalf("PUT invalid faults = %d %s, want 400", code, body)
	}
	if code, body := do(http.MethodGet, ""); code != http.StatusOK || !strings.Contains(body, `"rate":0.5`) {
		t.Fatalf("GET faults = %d %s", code, body)
	}
}
