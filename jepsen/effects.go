package jepsen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/graft-cluster/graft/jepsen/harness"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/nemesis"
	"github.com/graft-cluster/graft/jepsen/report"
)

// Metrics the effects report reads (cluster/metrics.go, flusher/metrics.go).
const (
	metricFlushErrors   = "graft_flush_errors_total"
	metricFlushRounds   = "graft_flush_rounds_total"
	metricPutErrors     = "graft_objstore_put_errors_total"
	metricFlushLag      = "graft_flush_lag_seconds"
	metricRaftState     = "graft_raft_state"
	metricRaftTerm      = "graft_raft_term"
	raftStateLeader     = 2
	effectsSettle       = time.Second // counted after a window's end
	probeInterval       = 500 * time.Millisecond
	probeRequestTimeout = 400 * time.Millisecond
)

// sample is one scrape of every node and of the object store's faults.
type sample struct {
	At time.Duration // since the run's start
	// Nodes are the nodes' graft_* metrics by series ("name" or
	// `name{label="v"}`); nil where the scrape failed.
	Nodes []map[string]float64
	// S3Injected and S3Resets are the object store's injected HTTP errors
	// and its proxy's reset connections so far; -1 when unknown.
	S3Injected, S3Resets int64
}

// probe samples the nodes' /metrics (at their real addresses, which no
// fault touches) and the object store's fault counters while a run goes
// on. A paused or dead node simply has no sample.
type probe struct {
	c     *harness.Cluster
	start time.Time
	http  *http.Client

	mu      sync.Mutex
	samples []sample

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startProbe samples every probeInterval until stop.
func startProbe(c *harness.Cluster, start time.Time) *probe {
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c.TLSConfig() // nil unless the cluster is secure
	p := &probe{c: c, start: start, cancel: cancel, http: &http.Client{Transport: tr}}
	p.wg.Go(func() {
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		for {
			p.sampleOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return p
}

// stop waits until the probe has sampled past until (since the run's
// start; at most two intervals more), stops it and returns the samples.
func (p *probe) stop(until time.Duration) []sample {
	deadline := time.Now().Add(2 * probeInterval)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		n := len(p.samples)
		past := n > 0 && p.samples[n-1].At >= until
		p.mu.Unlock()
		if past {
			break
		}
		time.Sleep(probeInterval / 5)
	}
	p.cancel()
	p.wg.Wait()
	p.http.CloseIdleConnections()
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.samples)
}

func (p *probe) sampleOnce(ctx context.Context) {
	eps := p.c.Endpoints()
	s := sample{Nodes: make([]map[string]float64, len(eps)), S3Injected: -1, S3Resets: -1}
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() { s.Nodes[i] = p.scrape(ctx, ep) })
	}
	wg.Go(func() {
		sctx, cancel := context.WithTimeout(ctx, probeRequestTimeout)
		defer cancel()
		if st, err := p.c.S3FaultStats(sctx); err == nil {
			s.S3Injected = st.Injected
		}
	})
	if px := p.c.S3Proxy(); px != nil {
		s.S3Resets = px.Stats().Rejected
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	s.At = time.Since(p.start)
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

// scrape returns one node's graft_* series, or nil.
func (p *probe) scrape(ctx context.Context, endpoint string) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, probeRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	m, err := parseMetrics(resp.Body)
	if err != nil {
		return nil
	}
	return m
}

// parseMetrics reads the graft_* series of a Prometheus text exposition.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "graft_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// exposure is a span during which a fault left a node isolated (it cannot
// reach a majority, or a majority cannot reach it), paused, or slowed (its
// outbound peer links delayed: slow-leader).
type exposure struct {
	Node     int
	Kind     string // "isolated", "paused" or "slowed"
	From, To time.Duration
}

// exposures follows the nemeses' calls and keeps the exposure spans.
type exposures struct {
	start time.Time
	n     int

	mu     sync.Mutex
	cut    map[[2]int]bool // directed peer links cut now
	open   map[[2]int]time.Duration
	closed []exposure
}

func newExposures(start time.Time, n int) *exposures {
	return &exposures{start: start, n: n, cut: map[[2]int]bool{}, open: map[[2]int]time.Duration{}}
}

const (
	kindIsolated = 0
	kindPaused   = 1
	kindSlowed   = 2
)

var kindNames = [...]string{kindIsolated: "isolated", kindPaused: "paused", kindSlowed: "slowed"}

// set opens or closes node i's exposure of kind k now.
func (x *exposures) setLocked(i, k int, on bool) {
	key := [2]int{i, k}
	from, isOpen := x.open[key]
	switch {
	case on && !isOpen:
		x.open[key] = time.Since(x.start)
	case !on && isOpen:
		x.closed = append(x.closed, exposure{Node: i, Kind: kindNames[k], From: from, To: time.Since(x.start)})
		delete(x.open, key)
	}
}

// links records the peer links cut now and updates who is isolated.
func (x *exposures) links(cut map[[2]int]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cut = cut
	iso := isolated(x.n, cut)
	for i := range x.n {
		x.setLocked(i, kindIsolated, slices.Contains(iso, i))
	}
}

func (x *exposures) partition(groups [][]int) {
	group := make([]int, x.n)
	for i := range group {
		group[i] = -1 - i
	}
	for g, members := range groups {
		for _, i := range members {
			if i >= 0 && i < x.n {
				group[i] = g
			}
		}
	}
	cut := map[[2]int]bool{}
	for i := range x.n {
		for j := range x.n {
			if i != j && group[i] != group[j] {
				cut[[2]int{i, j}] = true
			}
		}
	}
	x.links(cut)
}

func (x *exposures) cutLinks(pairs [][2]int) {
	x.mu.Lock()
	cut := maps.Clone(x.cut)
	x.mu.Unlock()
	for _, p := range pairs {
		cut[p] = true
	}
	x.links(cut)
}

func (x *exposures) paused(i int, on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setLocked(i, kindPaused, on)
}

// slowed opens or closes node i's slowed exposure; i < 0 closes every one.
func (x *exposures) slowed(i int, on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if i >= 0 {
		x.setLocked(i, kindSlowed, on)
		return
	}
	for j := range x.n {
		x.setLocked(j, kindSlowed, false)
	}
}

// spans returns every exposure; those still open end at "forever".
func (x *exposures) spans() []exposure {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := slices.Clone(x.closed)
	for key, from := range x.open {
		out = append(out, exposure{Node: key[0], Kind: kindNames[key[1]], From: from, To: 1<<63 - 1})
	}
	return out
}

// isolated returns the nodes that, with the given directed links cut,
// cannot reach a majority (themselves included) or cannot be reached by
// one.
func isolated(n int, cut map[[2]int]bool) []int {
	var out []int
	for i := range n {
		out1, in := 1, 1
		for j := range n {
			if j == i {
				continue
			}
			if !cut[[2]int{i, j}] {
				out1++
			}
			if !cut[[2]int{j, i}] {
				in++
			}
		}
		if 2*out1 <= n || 2*in <= n {
			out = append(out, i)
		}
	}
	return out
}

// tracked is the nemeses' view of the cluster: the adapter, recording
// which nodes each fault isolates, pauses or slows. Pause-leader acts
// through Pause and Resume, so its pauses are exposures like pause's.
type tracked struct {
	adapter
	x *exposures
}

func (t tracked) Partition(groups [][]int) error {
	err := t.adapter.Partition(groups)
	t.x.partition(groups)
	return err
}

func (t tracked) CutLinks(pairs [][2]int) error {
	err := t.adapter.CutLinks(pairs)
	t.x.cutLinks(pairs)
	return err
}

// Heal clears the cuts and the outbound delays.
func (t tracked) Heal() error {
	err := t.adapter.Heal()
	t.x.links(map[[2]int]bool{})
	t.x.slowed(-1, false)
	return err
}

// SetOutboundDelay (slow-leader) slows node i's peer links: the node can
// believe it leads while the others elect a new leader.
func (t tracked) SetOutboundDelay(i int, d, jitter time.Duration) error {
	err := t.adapter.SetOutboundDelay(i, d, jitter)
	if err == nil || d == 0 {
		t.x.slowed(i, d > 0)
	}
	return err
}

func (t tracked) Pause(i int) error {
	err := t.adapter.Pause(i)
	if err == nil {
		t.x.paused(i, true)
	}
	return err
}

func (t tracked) Resume(i int) error {
	err := t.adapter.Resume(i)
	t.x.paused(i, false)
	return err
}

// Kill ends a pause too (a killed process is not paused).
func (t tracked) Kill(i int) error {
	err := t.adapter.Kill(i)
	t.x.paused(i, false)
	return err
}

// effectsOf says what each fault window caused.
func effectsOf(windows []nemesis.Window, samples []sample, spans []exposure, ops []history.Op, nodeIDs []string) []report.Effect {
	var out []report.Effect
	pairs := history.Pairs(ops)
	for k, w := range windows {
		until := w.End + effectsSettle
		if k+1 < len(windows) && windows[k+1].Start < until {
			until = max(w.End, windows[k+1].Start)
		}
		out = append(out, effectOf(w, until, samples, spans, pairs, nodeIDs))
	}
	return out
}

func effectOf(w nemesis.Window, until time.Duration, samples []sample, spans []exposure, pairs [][2]history.Op, nodeIDs []string) report.Effect {
	e := report.Effect{
		Nemesis: w.Name, Mode: nemesis.S3Mode(w.Name, w.What), What: w.What,
		Start: secs(w.Start), End: secs(w.End), Until: secs(until),
	}
	// The samples from the last one at or before the start to the first
	// one at or after until.
	lo, hi := 0, len(samples)-1
	for i, s := range samples {
		if s.At <= w.Start {
			lo = i
		}
	}
	for i := len(samples) - 1; i >= 0; i-- {
		if samples[i].At >= until {
			hi = i
		}
	}
	var span []sample
	if len(samples) > 0 && lo <= hi {
		span = samples[lo : hi+1]
	}
	if len(span) > 0 {
		e.FlushRoundsFailed = int(increase(span, metricFlushErrors))
		e.FlushRoundsDone = int(increase(span, metricFlushRounds))
		for _, kind := range []string{"segment", "log"} {
			if n := int(increase(span, metricPutErrors+`{kind="`+kind+`"}`)); n > 0 {
				if e.PutErrors == nil {
					e.PutErrors = map[string]int{}
				}
				e.PutErrors[kind] = n
			}
		}
		for _, s := range span {
			for _, m := range s.Nodes {
				e.MaxFlushLag = max(e.MaxFlushLag, m[metricFlushLag])
			}
			if l := leaderOf(s, nodeIDs); len(e.Leaders) == 0 || e.Leaders[len(e.Leaders)-1] != l {
				e.Leaders = append(e.Leaders, l)
			}
		}
		e.LeaderChanges = leaderChanges(e.Leaders)
		e.TermBefore, e.TermAfter = maxTerm(span[0]), maxTerm(span[len(span)-1])
		first, last := span[0], span[len(span)-1]
		if first.S3Injected >= 0 && last.S3Injected >= 0 {
			e.S3ErrorsInjected = last.S3Injected - first.S3Injected
		}
		if first.S3Resets >= 0 && last.S3Resets >= 0 {
			e.S3Resets = last.S3Resets - first.S3Resets
		}
		for i, id := range nodeIDs {
			if i >= len(first.Nodes) || first.Nodes[i] == nil || i >= len(last.Nodes) || last.Nodes[i] == nil {
				e.Unscraped = append(e.Unscraped, id)
			}
		}
	}

	// The history: completions in [start, until].
	var mine []exposure
	for _, x := range spans {
		if x.From < until && x.To > w.Start {
			mine = append(mine, x)
			if id := nodeName(nodeIDs, x.Node) + " " + x.Kind; !slices.Contains(e.Exposed, id) {
				e.Exposed = append(e.Exposed, id)
			}
		}
	}
	for _, p := range pairs {
		inv, op := p[0], p[1]
		if op.Time < w.Start || op.Time > until { // incomplete ones have Time -1
			continue
		}
		switch op.Type {
		case history.OK:
			e.OpsOK++
			if op.F == "commit" {
				break
			}
			// Sent and answered while the node was cut off or stopped:
			// it answered on its own.
			for _, x := range mine {
				if x.Node == op.Node && inv.Time >= x.From && op.Time <= x.To {
					switch x.Kind {
					case kindNames[kindPaused]:
						e.ReadsFromPaused++
					case kindNames[kindSlowed]:
						e.ReadsFromSlowed++
					default:
						e.ReadsFromIsolated++
					}
					break
				}
			}
		case history.Fail:
			e.OpsFailed++
		default:
			e.UnknownOutcomes++
		}
		if op.Type != history.OK {
			if e.ErrorsByCode == nil {
				e.ErrorsByCode = map[string]int{}
			}
			e.ErrorsByCode[errorCode(op.Error)]++
		}
	}
	e.NoEffect = noEffect(e)
	e.Summary = effectSummary(e)
	return e
}

// increase is the sum over nodes of how much a counter grew across the
// samples, counting a drop as a restart from zero (as Prometheus's
// increase does); samples where the node did not answer are skipped.
func increase(span []sample, series string) float64 {
	var total float64
	n := 0
	for _, s := range span {
		n = max(n, len(s.Nodes))
	}
	for i := range n {
		prev, have := 0.0, false
		for _, s := range span {
			if i >= len(s.Nodes) || s.Nodes[i] == nil {
				continue
			}
			v, ok := s.Nodes[i][series]
			if !ok {
				continue
			}
			switch {
			case !have:
			case v >= prev:
				total += v - prev
			default:
				total += v // restarted
			}
			prev, have = v, true
		}
	}
	return total
}

// leaderOf returns the ID of the leader a sample saw (of several nodes
// that think they lead, the one with the highest term), or "-".
func leaderOf(s sample, nodeIDs []string) string {
	best, term := "-", -1.0
	for i, m := range s.Nodes {
		if m == nil || m[metricRaftState] != raftStateLeader {
			continue
		}
		if t := m[metricRaftTerm]; t > term {
			best, term = nodeName(nodeIDs, i), t
		}
	}
	return best
}

// leaderChanges counts the moves from one leader to another in a
// sequence, ignoring the leaderless gaps between them ("n1 > - > n1" is no
// change, "n1 > - > n2" is one).
func leaderChanges(seq []string) int {
	changes, last := 0, ""
	for _, l := range seq {
		if l == "-" {
			continue
		}
		if last != "" && l != last {
			changes++
		}
		last = l
	}
	return changes
}

func maxTerm(s sample) uint64 {
	var t float64
	for _, m := range s.Nodes {
		if m != nil {
			t = max(t, m[metricRaftTerm])
		}
	}
	return uint64(t)
}

func nodeName(ids []string, i int) string {
	if i >= 0 && i < len(ids) {
		return ids[i]
	}
	return fmt.Sprintf("node%d", i)
}

// connectCodes are the Connect error codes' names, as errors print them.
var connectCodes = []string{
	"canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
	"permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
	"unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
}

// errorCode returns the Connect code an error message carries (the first
// "code: " in it), "deadline_exceeded" or "canceled" for context errors,
// else "other".
func errorCode(msg string) string {
	best, at := "", len(msg)
	for _, c := range connectCodes {
		if i := strings.Index(msg, c+": "); i >= 0 && i < at && (i == 0 || !isWordByte(msg[i-1])) {
			best, at = c, i
		}
	}
	switch {
	case best != "":
		return best
	case strings.Contains(msg, "context deadline exceeded"):
		return "deadline_exceeded"
	case strings.Contains(msg, "context canceled"):
		return "canceled"
	}
	return "other"
}

func isWordByte(b byte) bool { return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// Nemeses whose purpose is to move leadership.
var leaderNemeses = []string{"partition-leader", "kill-leader", "kill-all", "pause-leader", "slow-leader", "transfer", "rolling-restart"}

// noEffect says what the window was expected to cause and did not, or "".
func noEffect(e report.Effect) string {
	elected := e.LeaderChanges > 0 || e.TermAfter > e.TermBefore
	switch {
	case e.Mode != "":
		if e.FlushRoundsFailed == 0 && len(e.PutErrors) > 0 {
			return "no flush round failed, though object-store PUTs did"
		}
		if e.FlushRoundsFailed == 0 {
			return "no flush round failed"
		}
	case e.Nemesis == "quarantine":
		// Its probe commits to the quarantined volume and must be refused;
		// the quarantine checker judges the rest.
		if e.ErrorsByCode["failed_precondition"] == 0 {
			return "no commit refused as quarantined"
		}
	case slices.Contains(leaderNemeses, e.Nemesis):
		if !elected {
			return "no leadership change"
		}
	default:
		if !elected && e.FlushRoundsFailed == 0 && e.UnknownOutcomes == 0 && e.ErrorsByCode["unavailable"] == 0 && e.ErrorsByCode["deadline_exceeded"] == 0 {
			return "no leadership change, no failed flush round, no unknown outcome or unavailable error"
		}
	}
	return ""
}

// effectSummary is the window's line in summary.txt, for example
// "s3-blackhole 12.3-17.4 s: no effect: no flush round failed; flush lag
// peaked at 5.2 s, 0 unknown outcomes".
func effectSummary(e report.Effect) string {
	name := e.Nemesis
	if e.Mode != "" {
		name = e.Mode
	}
	var parts []string
	if e.FlushRoundsFailed > 0 {
		parts = append(parts, fmt.Sprintf("%d flush rounds failed", e.FlushRoundsFailed))
	}
	if len(e.PutErrors) > 0 {
		parts = append(parts, fmt.Sprintf("failed PUTs: segment %d, log %d", e.PutErrors["segment"], e.PutErrors["log"]))
	}
	if e.FlushRoundsDone > 0 || e.Mode != "" {
		parts = append(parts, fmt.Sprintf("%d rounds completed, flush lag peaked at %.1f s", e.FlushRoundsDone, e.MaxFlushLag))
	}
	switch {
	case e.LeaderChanges > 0:
		parts = append(parts, fmt.Sprintf("leader %s (term %d -> %d)", strings.Join(e.Leaders, " > "), e.TermBefore, e.TermAfter))
	case e.TermAfter > e.TermBefore:
		parts = append(parts, fmt.Sprintf("no leader change but term %d -> %d (leaders %s)", e.TermBefore, e.TermAfter, strings.Join(e.Leaders, " > ")))
	default:
		parts = append(parts, fmt.Sprintf("leader %s throughout (term %d)", strings.Join(e.Leaders, " > "), e.TermAfter))
	}
	parts = append(parts, fmt.Sprintf("%d unknown outcomes, %d failed, %d ok", e.UnknownOutcomes, e.OpsFailed, e.OpsOK))
	if len(e.ErrorsByCode) > 0 {
		var codes []string
		for _, c := range slices.Sorted(maps.Keys(e.ErrorsByCode)) {
			codes = append(codes, fmt.Sprintf("%s=%d", c, e.ErrorsByCode[c]))
		}
		parts = append(parts, "errors "+strings.Join(codes, " "))
	}
	if len(e.Exposed) > 0 {
		reads := fmt.Sprintf("reads answered by an isolated node %d, by a paused node %d", e.ReadsFromIsolated, e.ReadsFromPaused)
		if e.ReadsFromSlowed > 0 || slices.ContainsFunc(e.Exposed, func(s string) bool { return strings.HasSuffix(s, " "+kindNames[kindSlowed]) }) {
			reads += fmt.Sprintf(", by a slowed node %d", e.ReadsFromSlowed)
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", reads, strings.Join(e.Exposed, ", ")))
	}
	if e.S3ErrorsInjected > 0 {
		parts = append(parts, fmt.Sprintf("%d S3 errors injected", e.S3ErrorsInjected))
	}
	if e.S3Resets > 0 {
		parts = append(parts, fmt.Sprintf("%d S3 connections reset", e.S3Resets))
	}
	if len(e.Unscraped) > 0 {
		parts = append(parts, "no metrics from "+strings.Join(e.Unscraped, ","))
	}
	head := fmt.Sprintf("%s %.1f-%.1f s: ", name, e.Start, e.End)
	if e.NoEffect != "" {
		return head + "no effect: " + e.NoEffect + "; " + strings.Join(parts, ", ")
	}
	return head + strings.Join(parts, ", ")
}

func secs(d time.Duration) float64 {
	return float64(d.Round(100*time.Millisecond)) / float64(time.Second)
}
