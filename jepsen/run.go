// Package jepsen is graft's consistency suite, in the discipline of Jepsen:
// it starts real `graft node` processes (and the object store) behind
// fault-injecting proxies (jepsen/harness), drives a workload through them
// while nemeses inject faults (jepsen/workload, jepsen/nemesis), records
// every operation's invocation and completion (jepsen/history), heals the
// cluster, reads back the final state from every node and from the bucket,
// and checks the history with Porcupine and invariant checkers
// (jepsen/checker). Each run writes a report directory (jepsen/report).
package jepsen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/harness"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/nemesis"
	"github.com/graft-cluster/graft/jepsen/proxy"
	"github.com/graft-cluster/graft/jepsen/report"
	"github.com/graft-cluster/graft/jepsen/workload"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// Options configure one run.
type Options struct {
	// Binary is the graft binary the nodes run. Required.
	Binary string
	// Out is the run's report directory (created). Required.
	Out string
	// Workload is register (default), bank or ryw.
	Workload string
	// Nemeses are nemesis names (see nemesis.Names); empty means none.
	Nemeses []string
	// TimeLimit is how long the workload runs under faults. Default 60s.
	TimeLimit time.Duration
	// Seed reproduces the run's choices. Default 1.
	Seed uint64
	// Nodes, Processes, Volumes size the run. Defaults 3, 10, 3.
	Nodes, Processes, Volumes int
	// OpTimeout bounds one client operation. Default 2s.
	OpTimeout time.Duration
	// Quiet and Hold time the nemesis: healthy time before each fault and
	// the fault's length. Defaults 3s and 5s.
	Quiet, Hold time.Duration
	// CheckTimeout bounds the linearizability search. Default 60s.
	CheckTimeout time.Duration
	// NodeArgs are extra `graft node` flags.
	NodeArgs []string
	// Log receives progress. Default discard.
	Log *slog.Logger
}

func (o *Options) defaults() error {
	if o.Binary == "" || o.Out == "" {
		return errors.New("jepsen: binary and out are required")
	}
	if o.Workload == "" {
		o.Workload = "register"
	}
	if len(o.Nemeses) == 0 {
		o.Nemeses = []string{"none"}
	}
	if o.TimeLimit <= 0 {
		o.TimeLimit = 60 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Outcome is a run's verdict and where its report is.
type Outcome struct {
	Verdict checker.Verdict
	Summary string
	Dir     string
}

// Run runs one test and writes its report to opts.Out. The error is for
// runs that could not be carried out at all (the cluster did not start);
// a run that found an anomaly returns a false verdict and no error.
func Run(ctx context.Context, opts Options) (Outcome, error) {
	if err := opts.defaults(); err != nil {
		return Outcome{}, err
	}
	log := opts.Log
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return Outcome{}, err
	}
	w, err := workload.New(opts.Workload, opts.Seed)
	if err != nil {
		return Outcome{}, err
	}
	hcfg := harness.DefaultConfig()
	hcfg.Binary, hcfg.Dir, hcfg.Nodes, hcfg.Logger = opts.Binary, filepath.Join(opts.Out, "cluster"), opts.Nodes, log.With("component", "harness")
	// Flush often, so the object store is in play during the run.
	hcfg.NodeArgs = append([]string{"--flush-max-age", "300ms", "--flush-interval", "50ms"}, opts.NodeArgs...)
	c, err := harness.Start(ctx, hcfg)
	if err != nil {
		return Outcome{}, fmt.Errorf("start cluster: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Stop(sctx); err != nil {
			log.Warn("stop cluster", "err", err)
		}
	}()

	rec := history.NewRecorder()
	env := &workload.Env{
		Endpoints: c.ClientEndpoints(), Rec: rec, Seed: opts.Seed,
		Processes: opts.Processes, Volumes: opts.Volumes, OpTimeout: opts.OpTimeout,
		Log: log.With("component", "workload"),
	}
	if err := w.Setup(ctx, env); err != nil {
		return Outcome{}, fmt.Errorf("set up workload: %w", err)
	}
	qenv, qclose, err := quarantineEnv(ctx, c, rec, w, opts, log)
	if err != nil {
		return Outcome{}, err
	}
	defer qclose()
	log.Info("running", "workload", w.Name(), "nemeses", opts.Nemeses, "time_limit", opts.TimeLimit, "seed", opts.Seed)
	runCtx, cancel := context.WithTimeout(ctx, opts.TimeLimit)
	windowsCh := make(chan []nemesis.Window, 1)
	go func() {
		windowsCh <- nemesis.Run(runCtx, adapter{c}, nemesis.Schedule{
			Names: opts.Nemeses, Seed: opts.Seed, Quiet: opts.Quiet, Hold: opts.Hold,
			Start: rec.Start(), Log: log.With("component", "nemesis"),
			Quarantine: qenv,
		})
	}()
	werr := w.Run(runCtx, env)
	cancel()
	windows := <-windowsCh
	if werr != nil {
		log.Warn("workload", "err", werr)
	}

	// Heal, let the cluster settle, then read the final state.
	// Each step has its own budget: a cluster slow to settle must not leave
	// the reads without time (they would all come back unknown).
	nemesis.HealAll(adapter{c}, log)
	step := func(d time.Duration, f func(ctx context.Context) error, what string) {
		sctx, scancel := context.WithTimeout(ctx, d)
		defer scancel()
		if err := f(sctx); err != nil {
			log.Warn(what, "err", err)
		}
	}
	step(time.Minute, c.WaitReady, "cluster not ready after healing")
	step(time.Minute, func(ctx context.Context) error { _, err := c.WaitConverged(ctx); return err }, "cluster did not converge after healing")
	ops := rec.Ops()
	fctx, fcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer fcancel()
	results := check(fctx, c, w, ops, opts, log)

	run := report.Run{
		Workload: w.Name(), Nemeses: opts.Nemeses, Seed: opts.Seed, Ops: ops, Results: results.results,
		Linearization: results.lin,
	}
	for _, win := range windows {
		run.Windows = append(run.Windows, report.Window{Name: win.Name + ": " + win.What, Start: win.Start, End: win.End})
	}
	for i := range c.Nodes() {
		run.NodeLogs = append(run.NodeLogs, c.LogPath(i))
	}
	if err := report.Write(opts.Out, run); err != nil {
		log.Warn("write report", "err", err)
	}
	return Outcome{Verdict: report.Overall(run), Summary: report.Summary(run), Dir: opts.Out}, nil
}

type checked struct {
	results []checker.Result
	lin     []checker.VolumeLinearization
}

// check reads the final state and runs every checker that applies.
func check(ctx context.Context, c *harness.Cluster, w workload.Workload, ops []history.Op, opts Options, log *slog.Logger) checked {
	var out checked
	vids := checkedVIDs(w.VIDs(), ops)
	cl, cerr := client.New(c.Endpoints())
	fin := readFinal(ctx, c, cl, vids, log)
	finals := fin.chains
	// Porcupine gets the history with unknown commits settled by the
	// final chains (see checker.ResolveUnknown); the others the original.
	resolved, applied, dropped := checker.ResolveUnknown(ops, finals)
	lin, vl := checker.Linearizable(resolved, opts.CheckTimeout)
	lin.Stats["unknown_commits_applied"] = applied
	lin.Stats["unknown_commits_never_applied"] = dropped
	out.results = append(out.results, lin)
	out.lin = vl
	out.results = append(out.results, checker.Chain(ops, finals))

	if cerr == nil {
		out.results = append(out.results, checker.Pages(ops, func(vid string, lsn, seed uint64, pages []uint32) error {
			return checkPages(ctx, cl, vid, lsn, seed, pages)
		}))
	}
	switch w.Name() {
	case "bank":
		out.results = append(out.results, checker.Bank(ops, workload.BankTotal, workload.BankAccounts))
	case "ryw":
		out.results = append(out.results, checker.ReadYourWrites(ops))
	}
	if r, ok := quarantineResult(ops, finals, opts); ok {
		out.results = append(out.results, r)
	}

	// The bucket after a final flush: a gap-free prefix of every chain.
	bucket := checker.Result{Name: "bucket", Valid: checker.Unknown}
	switch {
	case cerr != nil:
		bucket.Anomalies = []string{"client: " + cerr.Error()}
	case fin.flushErr != nil:
		bucket.Anomalies = []string{"final flush failed: " + fin.flushErr.Error()}
	case fin.bucketErr != nil:
		bucket.Anomalies = []string{"read bucket: " + fin.bucketErr.Error()}
	default:
		ref := finals[0]
		for _, f := range finals {
			if f != nil {
				ref = f
				break
			}
		}
		bucket = checker.Bucket(ref, fin.bucket, true)
	}
	out.results = append(out.results, bucket)

	// A node that died on its own (not killed by a nemesis) is a bug.
	crash := checker.Result{Name: "crashes", Valid: checker.Valid}
	for _, e := range c.UnexpectedExits() {
		crash.Valid = checker.Invalid
		crash.Anomalies = append(crash.Anomalies, fmt.Sprintf("%s (pid %d) exited on its own: %s", e.Name, e.PID, e.Status))
	}
	out.results = append(out.results, crash)
	return out
}

// final is the cluster's end state: every node's chains and the bucket
// after a final flush.
type final struct {
	chains              []map[string][]checker.Entry
	bucket              map[string][]checker.Entry
	flushErr, bucketErr error
}

// readFinal flushes, then reads every volume's chain from every node and
// the bucket, all at one applied index. A commit whose client gave up (an
// unknown outcome) may still reach the log after the workload stopped (a
// request that sat in a paused node's socket until SIGCONT, or one
// cancelled after Raft had it), and reads on either side of it would look
// like replicas that differ or a bucket ahead of the chain (seen: register
// pause seed 2). So all of it is repeated until the common applied index
// is the same after the reads and a second flush as after the first.
func readFinal(ctx context.Context, c *harness.Cluster, cl *client.Client, vids []volume.ID, log *slog.Logger) final {
	var f final
	for attempt := 1; ; attempt++ {
		f = final{chains: make([]map[string][]checker.Entry, c.Nodes())}
		if cl != nil {
			f.flushErr = cl.Flush(ctx)
		}
		before, berr := c.WaitConverged(ctx)
		for i, ep := range c.Endpoints() {
			m, err := readChains(ctx, ep, vids)
			if err != nil {
				log.Warn("final read", "node", i, "err", err)
				continue
			}
			f.chains[i] = m
		}
		if cl != nil && f.flushErr == nil {
			f.bucket, f.bucketErr = readBucket(ctx, c.DirectObjectStoreURL(), vids)
		}
		// A commit that landed between the flush and the first index is
		// in the chains but not in the bucket: flush again; with nothing
		// buffered that writes no entry, so the index does not move.
		if cl != nil && f.flushErr == nil {
			f.flushErr = cl.Flush(ctx)
		}
		after, aerr := c.WaitConverged(ctx)
		if berr != nil || aerr != nil || before == after || attempt == 5 {
			if before != after {
				log.Warn("final reads: the cluster kept applying entries; checking the last reads", "attempts", attempt)
			}
			return f
		}
		log.Info("final reads: entries applied during the reads; reading again", "before", before, "after", after)
	}
}

// readChains reads every volume's commit chain from one node, after it has
// applied everything (the caller waited for convergence).
func readChains(ctx context.Context, endpoint string, vids []volume.ID) (map[string][]checker.Entry, error) {
	cl, err := client.New([]string{endpoint}, client.WithAttempts(5))
	if err != nil {
		return nil, err
	}
	out := map[string][]checker.Entry{}
	for _, vid := range vids {
		var chain []checker.Entry
		for since := volume.LSN(0); ; {
			_, cs, more, err := cl.PullCommits(ctx, vid, since, 0, 1000, client.ReadOptions{Consistency: client.Stale})
			if err != nil {
				return nil, fmt.Errorf("pull commits of %s since %d: %w", vid, since, err)
			}
			for _, ci := range cs {
				chain = append(chain, checker.Entry{LSN: uint64(ci.LSN), Hash: ci.Hash.String()})
			}
			if !more || len(cs) == 0 {
				break
			}
			since = cs[len(cs)-1].LSN
		}
		out[vid.String()] = chain
	}
	return out, nil
}

// checkPages reads an acknowledged commit's pages at its LSN and compares
// them with what it wrote.
func checkPages(ctx context.Context, cl *client.Client, vid string, lsn, seed uint64, pages []uint32) error {
	id, err := volume.ParseID(vid)
	if err != nil {
		return err
	}
	idxs := make([]volume.PageIdx, len(pages))
	for i, p := range pages {
		idxs[i] = volume.PageIdx(p)
	}
	_, got, err := cl.ReadPages(ctx, id, volume.LSN(lsn), idxs, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: volume.LSN(lsn)})
	if err != nil {
		if ctx.Err() != nil || transient(err) {
			return fmt.Errorf("%w: %w", checker.ErrUnreadable, err)
		}
		return fmt.Errorf("read: %w", err)
	}
	for i, p := range got {
		if uint64(p.LSN) != lsn {
			return fmt.Errorf("page %d: version %d, want %d", pages[i], p.LSN, lsn)
		}
		if !bytes.Equal(p.Data, workload.PageData(seed, pages[i])) {
			return fmt.Errorf("page %d: bytes differ from what was committed", pages[i])
		}
	}
	return nil
}

// readBucket reads every volume's flushed chain from the object store
// alone, as a stateless reader would.
func readBucket(ctx context.Context, url string, vids []volume.ID) (map[string][]checker.Entry, error) {
	store, err := objstore.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	r, err := flusher.NewReader(store, flusher.DefaultReaderConfig())
	if err != nil {
		return nil, err
	}
	out := map[string][]checker.Entry{}
	for _, vid := range vids {
		h, err := r.History(ctx, vid)
		if err != nil {
			return nil, err
		}
		if h.Flushed == 0 {
			continue
		}
		cs, err := r.Commits(ctx, h, 0, h.Flushed, 0)
		if err != nil {
			return nil, err
		}
		var chain []checker.Entry
		for _, ci := range cs {
			chain = append(chain, checker.Entry{LSN: uint64(ci.LSN), Hash: ci.Hash.String()})
		}
		out[vid.String()] = chain
	}
	return out, nil
}

// adapter lets the nemeses drive a harness cluster.
type adapter struct{ c *harness.Cluster }

func (a adapter) N() int                                     { return a.c.Nodes() }
func (a adapter) Leader(ctx context.Context) (int, error)    { return a.c.Leader(ctx) }
func (a adapter) Partition(groups [][]int) error             { return a.c.Partition(groups) }
func (a adapter) Heal() error                                { return a.c.Heal() }
func (a adapter) SetLinkDelay(d, jitter time.Duration) error { return a.c.SetLinkDelay(d, jitter) }
func (a adapter) Kill(i int) error                           { return a.c.Kill(i) }
func (a adapter) Restart(i int) error                        { return a.c.Restart(i) }
func (a adapter) Pause(i int) error                          { return a.c.Pause(i) }
func (a adapter) Resume(i int) error                         { return a.c.Resume(i) }
func (a adapter) S3Delay(d time.Duration) error              { return a.c.S3Delay(d) }
func (a adapter) RemoveAndReadd(ctx context.Context, i int) error {
	return a.c.RemoveAndReadd(ctx, i)
}

func (a adapter) TransferLeadership(ctx context.Context) error {
	_, err := a.c.TransferLeadership(ctx)
	return err
}

func (a adapter) CutLinks(pairs [][2]int) error {
	var errs []error
	for _, p := range pairs {
		errs = append(errs, a.c.SetLink(p[0], p[1], proxy.Drop))
	}
	return errors.Join(errs...)
}

func (a adapter) S3Down(down bool) error {
	if down {
		return a.c.S3(proxy.Drop)
	}
	return a.c.S3(proxy.Pass)
}

// transient reports whether a read error says only that the cluster could
// not answer in time, not what it holds.
func transient(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled, connect.CodeResourceExhausted:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
