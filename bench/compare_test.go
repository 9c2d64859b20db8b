package bench

// White-box tests: the comparison's pieces (closed loop, ratios, goals,
// report files, the bare-Raft peer) are unexported or need its internals.

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseWorkload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Workload
		ok   bool
	}{
		{"1x1", Workload{Clients: 1, Pages: 1}, true},
		{"64x16", Workload{Clients: 64, Pages: 16}, true},
		{"1000x1@2000", Workload{Clients: 1000, Pages: 1, Rate: 2000}, true},
		{"1x1@0", Workload{}, false},
		{"1x1@", Workload{}, false},
		{"0x1", Workload{}, false},
		{"1x0", Workload{}, false},
		{"64", Workload{}, false},
		{"ax1", Workload{}, false},
	}
	for _, tt := range tests {
		got, err := ParseWorkload(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseWorkload(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseWorkload(%q) error %v does not wrap ErrInvalidArgument", tt.in, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("Workload.String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestCompareConfig_Validate(t *testing.T) {
	t.Parallel()
	good := DefaultCompareConfig()
	good.OutDir, good.WorkDir, good.GraftBin, good.EtcdBin, good.EtcdLoadBin = "o", "w", "g", "e", "l"
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	for name, bad := range map[string]func(*CompareConfig){
		"no out dir":       func(c *CompareConfig) { c.OutDir = "" },
		"no graft binary":  func(c *CompareConfig) { c.GraftBin = "" },
		"etcd without bin": func(c *CompareConfig) { c.EtcdLoadBin = "" },
		"unknown target":   func(c *CompareConfig) { c.Targets = []string{"zookeeper"} },
		"no workloads":     func(c *CompareConfig) { c.Workloads = nil },
		"zero duration":    func(c *CompareConfig) { c.Duration = 0 },
		"port base":        func(c *CompareConfig) { c.PortBase = 65500 },
		"bad s3 workload":  func(c *CompareConfig) { c.S3Workloads = []Workload{{Clients: 0, Pages: 1}} },
	} {
		c := good
		bad(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: Validate = %v, want ErrInvalidArgument", name, err)
		}
	}
	etcdless := good
	etcdless.Targets, etcdless.EtcdBin, etcdless.EtcdLoadBin = []string{TargetDisk}, "", ""
	if err := etcdless.Validate(); err != nil {
		t.Errorf("Validate without etcd target or binaries = %v", err)
	}
}

func TestClosedLoop(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	res, err := closedLoop(context.Background(), 4, 20*time.Millisecond, 100*time.Millisecond, func(context.Context, int, uint64) error {
		calls.Add(1)
		time.Sleep(time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatalf("closedLoop: %v", err)
	}
	if res.Clients != 4 || res.Commits == 0 || int64(res.Commits) > calls.Load() || res.OpsPerSec <= 0 || res.Seconds < 0.1 {
		t.Errorf("closedLoop = %+v after %d calls", res, calls.Load())
	}
	if len(res.CDF) != len(CDFPercents) {
		t.Fatalf("CDF has %d points, want %d", len(res.CDF), len(CDFPercents))
	}
	for i := 1; i < len(res.CDF); i++ {
		if res.CDF[i][0] <= res.CDF[i-1][0] || res.CDF[i][1] < res.CDF[i-1][1] {
			t.Fatalf("CDF not increasing at %d: %v then %v", i, res.CDF[i-1], res.CDF[i])
		}
	}
	if res.CDF[0][1] != res.MinMS || res.CDF[len(res.CDF)-1][1] != res.MaxMS || res.CDF[50][1] != res.P50MS {
		t.Errorf("CDF ends/median %v %v %v, want min %v max %v p50 %v", res.CDF[0], res.CDF[len(res.CDF)-1], res.CDF[50], res.MinMS, res.MaxMS, res.P50MS)
	}

	boom := errors.New("boom")
	_, err = closedLoop(context.Background(), 2, 0, time.Minute, func(_ context.Context, w int, n uint64) error {
		if w == 1 && n == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("closedLoop with a failing op = %v, want boom", err)
	}
	if _, err := closedLoop(context.Background(), 0, 0, time.Second, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("closedLoop with 0 clients = %v, want ErrInvalidArgument", err)
	}
}

func TestOpenLoop(t *testing.T) {
	t.Parallel()
	// 4 writers at 200/s for 200 ms: ops due at i/200 s for i = 0..40,
	// writer i mod 4, each writer's ops in order.
	var mu sync.Mutex
	next := make([]uint64, 4)
	calls := 0
	res, err := openLoop(context.Background(), 4, 200, 0, 200*time.Millisecond, func(_ context.Context, w int, n uint64) error {
		mu.Lock()
		defer mu.Unlock()
		if n != next[w] {
			t.Errorf("writer %d: op %d, want %d", w, n, next[w])
		}
		next[w]++
		calls++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 41 || res.Commits != 41 || res.Clients != 4 {
		t.Errorf("openLoop = %d commits of %d clients after %d calls, want 41 of 4", res.Commits, res.Clients, calls)
	}
	if _, err := openLoop(context.Background(), 1, 0, 0, time.Second, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("openLoop at rate 0 = %v, want ErrInvalidArgument", err)
	}
}

// cell returns a successful cell with the given p50, p99 and ops/s.
func cell(target string, clients, pages int, p50, p99, ops float64) CellResult {
	return CellResult{Target: target, Clients: clients, Pages: pages, Commits: 100, P50MS: p50, P99MS: p99, OpsPerSec: ops,
		CDF: [][2]float64{{0, p50 / 2}, {50, p50}, {99, p99}, {100, p99 * 2}}}
}

func TestRatiosAndGoals(t *testing.T) {
	t.Parallel()
	one, many := Workload{Clients: 1, Pages: 1}, Workload{Clients: 64, Pages: 1}
	cells := []CellResult{
		cell(TargetGraft, 1, 1, 1, 4, 1000),
		cell(TargetGraftS3, 1, 1, 1.05, 4, 950),
		cell(TargetEtcd, 1, 1, 4, 8, 250),
		cell(TargetRaft, 1, 1, 0.8, 3, 1200),
		cell(TargetDisk, 1, 1, 0.5, 2, 2000),
		cell(TargetGraft, 64, 1, 10, 30, 6000),
		cell(TargetGraftS3, 64, 1, 12, 30, 5000),
		cell(TargetEtcd, 64, 1, 40, 20, 2000),
		cell(TargetRaft, 64, 1, 9, 25, 6200),
		cell(TargetGraftSpread, 64, 1, 12, 35, 4500),
		{Target: TargetDisk, Clients: 64, Pages: 1, Error: "disk full"},
	}
	cells[5].Procs = []ProcMem{{Name: "graft node n1", HWMKiB: 100 << 10}, {Name: "graft node n2", HWMKiB: 300 << 10}, {Name: "graft dev (supervisor, embedded S3)", HWMKiB: 900 << 10}}

	rs := ratios(cells, []Workload{one, many})
	if len(rs) != 2 {
		t.Fatalf("ratios: %d rows, want 2", len(rs))
	}
	approx := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || *got < want-1e-9 || *got > want+1e-9 {
			t.Errorf("%s = %v, want %v", name, deref(got), want)
		}
	}
	approx("1x1 graft/etcd p50", rs[0].GraftEtcdP50, 0.25)
	approx("1x1 graft/fsync p50", rs[0].GraftFsyncP50, 2)
	approx("1x1 graft/etcd p99", rs[0].GraftEtcdP99, 0.5)
	approx("1x1 graft/raft ops", rs[0].GraftRaftOps, 1000.0/1200)
	approx("1x1 s3/graft p50", rs[0].GraftS3P50, 1.05)
	approx("64x1 graft/etcd ops", rs[1].GraftEtcdOps, 3)
	open := Workload{Clients: 1000, Pages: 1, Rate: 2000}
	if c := findCell(append(cells, cell(TargetGraft, 1000, 1, 2, 5, 2000)), TargetGraft, open); c != nil {
		t.Errorf("findCell(%s) = %+v: a closed-loop cell of the same shape, want none", open, c)
	}
	if rs[1].GraftFsyncP50 != nil {
		t.Errorf("64x1 graft/fsync p50 = %v, want nil (disk cell failed)", *rs[1].GraftFsyncP50)
	}

	met := map[string]bool{}
	for _, g := range goals(cells) {
		if g.Met == nil {
			t.Errorf("goal %q not decided", g.Name)
			continue
		}
		met[g.Name] = *g.Met
	}
	for name, want := range map[string]bool{
		"1 client, 1 page: graft p50 <= 0.5x etcd p50":                                 true,
		"1 client, 1 page: graft p50 <= 3x fdatasync p50":                              true,
		"1 client, 1 page: graft p99 <= etcd p99":                                      true,
		"64 clients, 1 page(s): graft ops >= 4x etcd ops":                              false,
		"64 clients, 1 page(s): graft p99 <= etcd p99":                                 false,
		"64 clients, 1 page(s): graft ops >= 90% of bare raft ops":                     true,
		"1 client(s), 1 page(s): S3 latency changes graft p50 by <= 10%":               true,
		"64 client(s), 1 page(s): S3 latency changes graft p50 by <= 10%":              false,
		"64 clients, 1 page, spread over the 3 nodes: ops >= 80% of all on the leader": false,
		"every graft cell: peak RSS (VmHWM) per graft node <= 256 MiB":                 false,
	} {
		if got, ok := met[name]; !ok || got != want {
			t.Errorf("goal %q met = %v (present %v), want %v", name, got, ok, want)
		}
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestWriteReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rep := &CompareReport{
		Started:  time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC),
		Machine:  Machine{NumCPU: 2, EtcdVersion: "3.7.3"},
		Settings: Settings{Targets: AllTargets, Workloads: []Workload{{Clients: 1, Pages: 1}, {Clients: 64, Pages: 16}}, S3LatencyMS: 50, DurationSec: 10},
		Cells: []CellResult{
			cell(TargetGraft, 1, 1, 1, 4, 1000), cell(TargetEtcd, 1, 1, 4, 8, 250), cell(TargetDisk, 1, 1, 0.02, 2, 2000),
			{Target: TargetRaft, Clients: 64, Pages: 16, Error: "raft peer r2 exited | badly\nmore"},
		},
	}
	rep.Cells[0].Procs = []ProcMem{
		{Name: "graft dev", HWMKiB: 900 << 10}, // the supervisor: not a member
		{Name: "node 1", HWMKiB: 300 << 10, RSSKiB: 280 << 10, AnonKiB: 80 << 10, FileKiB: 200 << 10},
		{Name: "node 2", HWMKiB: 100 << 10},
	}
	rep.Ratios = ratios(rep.Cells, rep.Settings.Workloads)
	rep.Goals = goals(rep.Cells)
	if err := writeReport(dir, rep); err != nil {
		t.Fatalf("writeReport: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 1 | 1 | graft (" + DefaultLogStore + " log store) | 1.00 | 0.00 | 4.00 |",
		"| 1 | 1 | etcd 3.7.3 | 4.00 |",
		`failed: raft peer r2 exited \| badly |`,
		"| 1 | 1 | 0.25x | 50.00x | 0.50x | 4.00x | n/a | n/a |",
		"| 1 client, 1 page: graft p50 <= 0.5x etcd p50 | 0.25x | <= 0.50x | yes |",
		"Peak RSS: graft, 1 x 1 pages, node 1: VmHWM 300 MiB; at the end of the cell RSS 280 MiB = 80 MiB anonymous + 200 MiB file-backed",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	var back CompareReport
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Cells) != 4 || back.Cells[0].P99MS != 4 {
		t.Errorf("results.json round trip: %v, %+v", err, back.Cells)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "latency.svg"))
	if err != nil {
		t.Fatal(err)
	}
	assertWellFormedXML(t, svg)
	if n := strings.Count(string(svg), "<polyline"); n != 3 {
		t.Errorf("latency.svg has %d CDF lines, want 3 (one per successful cell)", n)
	}
	if !strings.Contains(string(svg), "failed: raft") {
		t.Error("latency.svg does not name the failed cell")
	}
}

func assertWellFormedXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("latency.svg is not well-formed XML: %v", err)
		}
	}
}

func TestRunCompare_diskOnly(t *testing.T) {
	t.Parallel()
	cfg := DefaultCompareConfig()
	cfg.OutDir, cfg.WorkDir, cfg.GraftBin = t.TempDir(), t.TempDir(), "unused"
	cfg.Targets = []string{TargetDisk}
	cfg.Workloads = []Workload{{Clients: 1, Pages: 1}, {Clients: 2, Pages: 2}}
	// Long enough for a commit on a loaded machine: a 50ms window once saw
	// none (fdatasync stalls), and the test checks shape, not speed.
	cfg.Duration, cfg.Warmup = 500*time.Millisecond, 10*time.Millisecond
	rep, err := RunCompare(context.Background(), cfg)
	if err != nil {
		t.Fatalf("RunCompare: %v", err)
	}
	if len(rep.Cells) != 2 || !rep.Cells[0].ok() || rep.Cells[1].PayloadBytes != 2*4096+64 || rep.Machine.FsyncP50MS != rep.Cells[0].P50MS {
		t.Errorf("RunCompare = %+v", rep)
	}
	for _, f := range []string{"disk-c1-p1.json", "disk-c2-p2.json", "results.json", "results.md", "latency.svg"} {
		if _, err := os.Stat(filepath.Join(cfg.OutDir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	if ents, _ := os.ReadDir(cfg.WorkDir); len(ents) != 0 {
		t.Errorf("work dir not cleaned: %v", ents)
	}
}

func TestRunRaftPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three Raft peers with fsync")
	}
	t.Parallel()
	const n = 3
	var (
		cfgs  [n]RaftPeerConfig
		peers []RaftPeer
	)
	for i := range cfgs {
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		id := string(rune('a' + i))
		cfgs[i] = RaftPeerConfig{ID: id, Dir: t.TempDir(), RaftListener: rl, ControlListener: cl}
		peers = append(peers, RaftPeer{ID: id, Addr: rl.Addr().String()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, n)
	for i := range cfgs {
		cfgs[i].Peers = peers
		go func() { errc <- RunRaftPeer(ctx, cfgs[i]) }()
	}
	t.Cleanup(func() {
		cancel()
		for range n {
			if err := <-errc; err != nil {
				t.Errorf("RunRaftPeer: %v", err)
			}
		}
	})

	hc := &http.Client{Timeout: 5 * time.Second}
	leader := ""
	for deadline := time.Now().Add(20 * time.Second); leader == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, c := range cfgs {
			st, err := raftStatus(ctx, hc, c.ControlListener.Addr().String())
			if err == nil && st.State == "Leader" {
				leader = c.ControlListener.Addr().String()
			}
		}
	}
	if leader == "" {
		t.Fatal("no leader within 20s")
	}
	for _, c := range cfgs {
		if addr := c.ControlListener.Addr().String(); addr != leader {
			resp, err := hc.Post("http://"+addr+"/run?clients=1&pages=1&warmup=0s&duration=10ms", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusConflict {
				t.Errorf("follower /run = %s, want 409", resp.Status)
			}
			break
		}
	}
	resp, err := hc.Post("http://"+leader+"/run?clients=4&pages=2&warmup=20ms&duration=200ms", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res CellResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("leader /run = %s, %v", resp.Status, err)
	}
	if res.Clients != 4 || res.Pages != 2 || res.PayloadBytes != RaftCommandBytes(2) || res.Commits == 0 || res.P50MS <= 0 {
		t.Errorf("leader /run = %+v", res)
	}
	if RaftCommandBytes(1) != 4191 {
		t.Errorf("RaftCommandBytes(1) = %d, want 4191 (fsm.EncodeCommit of one page)", RaftCommandBytes(1))
	}

	bad := cfgs[0]
	bad.ID = "z"
	if err := bad.Validate(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Validate with an ID not among peers = %v, want ErrInvalidArgument", err)
	}
}
