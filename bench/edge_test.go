package bench

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParsePageCounters(t *testing.T) {
	const text = `# HELP graft_edge_pages_total Pages served by ReadPages, by where they came from.
# TYPE graft_edge_pages_total counter
graft_edge_pages_total{source="bucket"} 7
graft_edge_pages_total{source="cache"} 1.2345e+06
graft_edge_pages_total{source="upstream"} 300
graft_edge_requests_total{code="ok",method="ReadPages"} 99
graft_edge_cache_bytes 2.5e+08
graft_edge_cache_max_bytes 2.68435456e+08
`
	c, err := parsePageCounters(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if c["cache"] != 1234500 || c["upstream"] != 300 || c["bucket"] != 7 || c["cache_bytes"] != 250000000 || c["cache_max_bytes"] != 256<<20 {
		t.Fatalf("counters %v", c)
	}
	if c.served() != 1234807 || c.origin() != 307 {
		t.Fatalf("served %d origin %d", c.served(), c.origin())
	}
	if _, err := parsePageCounters(strings.NewReader("go_goroutines 5\n")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("no counters: err %v, want ErrInvalidArgument", err)
	}
	if _, err := parsePageCounters(strings.NewReader(`graft_edge_pages_total{source="cache"} x` + "\n")); err == nil {
		t.Fatal("bad value parsed")
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// TestSummarizeEdge checks the per-phase and overall numbers on made-up
// samples: offload over the measured windows only, latencies over every
// phase of a target, pages/s with ReadPages pages per read, the goals.
func TestSummarizeEdge(t *testing.T) {
	rep := &EdgeReport{EdgeHWMKiB: 512 * 1024}
	rep.Settings.ReadPages = 4
	rep.Settings.CacheBytes = 256 << 20
	rep.Phases = nil
	edgeSamples := func() []time.Duration {
		var s []time.Duration
		for i := range 100 {
			s = append(s, ms(1+i%3)) // p50 2 ms
		}
		return s
	}
	directSamples := func() []time.Duration {
		var s []time.Duration
		for range 25 {
			s = append(s, ms(5))
		}
		return s
	}
	phases := []edgeSample{
		{round: 1, target: EdgeTargetEdge, samples: edgeSamples(), elapsed: time.Second, clients: 8, pages: 4,
			counters: [2]pageCounters{{"cache": 1000, "upstream": 500}, {"cache": 1390, "upstream": 510}}},
		{round: 1, target: EdgeTargetDirect, samples: directSamples(), elapsed: time.Second, clients: 8, pages: 4},
		{round: 2, target: EdgeTargetEdge, samples: edgeSamples(), elapsed: time.Second, clients: 8, pages: 4,
			counters: [2]pageCounters{{"cache": 1390, "upstream": 510}, {"cache": 1790, "upstream": 510}}},
		{round: 2, target: EdgeTargetDirect, samples: directSamples(), elapsed: time.Second, clients: 8, pages: 4},
	}
	summarizeEdge(rep, phases)
	if len(rep.Phases) != 4 {
		t.Fatalf("%d phases", len(rep.Phases))
	}
	p1 := rep.Phases[0]
	if p1.ServedPages != 400 || p1.OriginPages != 10 || math.Abs(p1.Offload-0.975) > 1e-9 || p1.PagesPerSec != 400 {
		t.Errorf("round 1 edge phase: %+v", p1)
	}
	if p := rep.Phases[2]; p.Offload != 1 || p.ServedPages != 400 {
		t.Errorf("round 2 edge phase: served %d offload %v", p.ServedPages, p.Offload)
	}
	if p := rep.Phases[1]; p.ServedPages != 0 || p.PagesPerSec != 100 || p.P50MS != 5 {
		t.Errorf("direct phase: %+v", p)
	}
	if math.Abs(rep.Offload-(1-10.0/800)) > 1e-9 || rep.WarmOffload != 1 {
		t.Errorf("offload %v warm %v, want %v and 1", rep.Offload, rep.WarmOffload, 1-10.0/800)
	}
	if rep.Edge.Reads != 200 || rep.Edge.PagesPerSec != 400 || rep.Edge.P50MS != 2 || rep.Edge.P99MS != 3 {
		t.Errorf("edge side %+v", rep.Edge)
	}
	if rep.Direct.Reads != 50 || rep.Direct.PagesPerSec != 100 || rep.Direct.P50MS != 5 {
		t.Errorf("direct side %+v", rep.Direct)
	}
	if rep.P50Ratio != 0.4 || rep.PagesPerSecX != 4 || rep.HWMOverCache != 2 {
		t.Errorf("ratios: p50 %v pages/s %v hwm %v", rep.P50Ratio, rep.PagesPerSecX, rep.HWMOverCache)
	}
	if !rep.GoalOffload || !rep.GoalP50 || !rep.GoalPagesPerS {
		t.Errorf("goals %v %v %v, want all met", rep.GoalOffload, rep.GoalP50, rep.GoalPagesPerS)
	}
	if txt := rep.Text(); !strings.Contains(txt, "97.5% (10 of 400 pages from origin)") || !strings.Contains(txt, "goal >= 3x: met") {
		t.Errorf("text:\n%s", txt)
	}

	// After a prefill every round is warm.
	pre := &EdgeReport{}
	pre.Settings.ReadPages, pre.Settings.PrefillReads = 4, 1000
	summarizeEdge(pre, phases[:1])
	if math.Abs(pre.WarmOffload-0.975) > 1e-9 || !pre.GoalOffload {
		t.Errorf("prefilled: warm offload %v goal %v, want 0.975 met", pre.WarmOffload, pre.GoalOffload)
	}

	// A slow edge misses its goals.
	slow := &EdgeReport{}
	slow.Settings.ReadPages = 4
	summarizeEdge(slow, []edgeSample{
		{round: 1, target: EdgeTargetEdge, samples: directSamples(), elapsed: time.Second, clients: 8, pages: 4,
			counters: [2]pageCounters{{"cache": 0}, {"cache": 50, "upstream": 50}}},
		{round: 1, target: EdgeTargetDirect, samples: edgeSamples(), elapsed: time.Second, clients: 8, pages: 4},
	})
	if slow.GoalOffload || slow.GoalP50 || slow.GoalPagesPerS || slow.Offload != 0.5 || slow.WarmOffload != 0.5 {
		t.Errorf("slow edge: offload %v warm %v goals %v %v %v", slow.Offload, slow.WarmOffload, slow.GoalOffload, slow.GoalP50, slow.GoalPagesPerS)
	}
}

func TestEdgeConfig_Validate(t *testing.T) {
	ok := DefaultEdgeConfig()
	ok.GraftBin, ok.OutDir, ok.WorkDir = "graft", "out", "work"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mut := range map[string]func(*EdgeConfig){
		"no bin":     func(c *EdgeConfig) { c.GraftBin = "" },
		"clients":    func(c *EdgeConfig) { c.Clients = 0 },
		"theta":      func(c *EdgeConfig) { c.Theta = 1 },
		"read pages": func(c *EdgeConfig) { c.ReadPages = c.PagesPerVolume + 1 },
		"rounds":     func(c *EdgeConfig) { c.Rounds = 0 },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

// The static optimum: a cache of every page serves every read, an empty
// one none, and the bench's default data set in the default edge's page
// cache (58,329 pages of 100,000) tops out near 95.3% — the goal's edge.
func TestOptimalOffload(t *testing.T) {
	z, err := NewZipf(100000, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	if got := optimalOffload(z, 10, 10000, 4, 100000); math.Abs(got-1) > 1e-9 {
		t.Errorf("every page cached: %v, want 1", got)
	}
	if got := optimalOffload(z, 10, 10000, 4, 0); got != 0 {
		t.Errorf("nothing cached: %v, want 0", got)
	}
	if got := optimalOffload(z, 10, 10000, 4, 58329); got < 0.95 || got > 0.956 {
		t.Errorf("58,329 of 100,000 pages: %v, want about 0.953", got)
	}
	small, large := optimalOffload(z, 10, 10000, 4, 1000), optimalOffload(z, 10, 10000, 4, 2000)
	if !(0 < small && small < large && large < 1) {
		t.Errorf("1000 pages %v, 2000 pages %v: want 0 < small < large < 1", small, large)
	}
}
