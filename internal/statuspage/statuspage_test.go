package statuspage

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for a Ring.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRing_Minute(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	r := NewRing(clk.now)
	// 100 requests a second for 10 seconds: 98 at 1ms, 2 at 100ms; one
	// failure a second.
	for range 10 {
		for i := range 100 {
			d := time.Millisecond
			if i >= 98 {
				d = 100 * time.Millisecond
			}
			r.Observe(d, true)
		}
		r.Observe(time.Second, false)
		clk.add(time.Second)
	}
	m := r.Minute()
	if m.OK != 1000 || m.Failed != 10 {
		t.Fatalf("ok %d failed %d, want 1000 and 10", m.OK, m.Failed)
	}
	if want := 1000.0 / Seconds; m.Rate != want {
		t.Errorf("rate %v, want %v", m.Rate, want)
	}
	// Bucket upper bounds: at most 19% above the true value.
	if m.P50 < time.Millisecond || m.P50 > 1190*time.Microsecond {
		t.Errorf("p50 %v, want 1ms..1.19ms", m.P50)
	}
	if m.P99 < 100*time.Millisecond || m.P99 > 119*time.Millisecond {
		t.Errorf("p99 %v, want 100ms..119ms", m.P99)
	}
	if len(m.PerSecond) != Seconds || m.PerSecond[Seconds-1] != 100 || m.PerSecond[Seconds-11] != 0 {
		t.Errorf("per second: last %v, 11th from last %v; want 100 and 0", m.PerSecond[Seconds-1], m.PerSecond[Seconds-11])
	}
	if p := m.P99PerSecond[Seconds-1]; p < 100 || p > 119 {
		t.Errorf("last second's p99 %v ms, want 100..119", p)
	}

	// The current second is left out until it ends.
	r.Observe(time.Millisecond, true)
	if got := r.Minute().OK; got != 1000 {
		t.Errorf("ok %d counting the current second, want 1000", got)
	}
	// A minute later everything has aged out; the slots are reused.
	clk.add((Seconds + 1) * time.Second)
	if m := r.Minute(); m.OK != 0 || m.P99 != 0 {
		t.Errorf("after a minute: ok %d p99 %v, want 0", m.OK, m.P99)
	}
	r.Observe(5*time.Millisecond, true)
	clk.add(time.Second)
	if m := r.Minute(); m.OK != 1 || m.P50 < 5*time.Millisecond || m.P50 > 6*time.Millisecond {
		t.Errorf("one request after reuse: ok %d p50 %v", m.OK, m.P50)
	}
}

func TestBucketOf(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, bucketLow, bucketLow + 1, time.Millisecond, time.Second, time.Hour} {
		k := bucketOf(d)
		if d > bucketBounds[k] && k != nBuckets-1 {
			t.Errorf("%v in bucket %d with upper bound %v", d, k, bucketBounds[k])
		}
		if k > 0 && d <= bucketBounds[k-1] {
			t.Errorf("%v in bucket %d, but fits bucket %d (bound %v)", d, k, k-1, bucketBounds[k-1])
		}
	}
	for k := range nBuckets - 1 {
		if got := bucketOf(bucketBounds[k]); got != k {
			t.Errorf("bound of bucket %d (%v) lands in %d", k, bucketBounds[k], got)
		}
	}
}

func TestSparkline(t *testing.T) {
	s := string(Sparkline([]float64{0, 5, 10}, 100, 20, "ms <x>"))
	for _, want := range []string{`<svg class="sl"`, `width="100" height="20"`, `<polyline`, `2.0,18.0 50.0,10.0 98.0,2.0`, `max 10 ms &lt;x&gt;, last 10 ms &lt;x&gt;`, `</svg>`} {
		if !strings.Contains(s, want) {
			t.Errorf("sparkline lacks %q:\n%s", want, s)
		}
	}
	flat := string(Sparkline(make([]float64, 3), 100, 20, ""))
	if !strings.Contains(flat, `2.0,18.0 50.0,18.0 98.0,18.0`) {
		t.Errorf("all-zero sparkline is not flat at the bottom:\n%s", flat)
	}
	if empty := string(Sparkline(nil, 10, 10, "")); strings.Contains(empty, "polyline") {
		t.Errorf("empty sparkline draws a line: %s", empty)
	}
}

func TestNew_Render(t *testing.T) {
	tpl := New("t", `{{define "body"}}<p>{{.Name}} {{bytes .N}}</p>{{end}}`)
	type data struct {
		Frame
		Name string
		N    uint64
	}
	req := httptest.NewRequest("GET", "/?refresh=0", nil)
	rec := httptest.NewRecorder()
	if err := Render(rec, tpl, data{Frame: NewFrame(req, "T", "sub"), Name: "<b>", N: 3 << 20}); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	for _, want := range []string{"<title>T</title>", "<p>&lt;b&gt; 3.0 MiB</p>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("?refresh=0 still refreshes")
	}
	rec = httptest.NewRecorder()
	_ = Render(rec, tpl, data{Frame: NewFrame(httptest.NewRequest("GET", "/", nil), "T", "sub")})
	if !strings.Contains(rec.Body.String(), `<meta http-equiv="refresh" content="5">`) {
		t.Errorf("default page does not refresh every 5 s:\n%s", rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
