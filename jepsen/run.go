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
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	// Workload is register (default), bank, ryw or sqlite-bank.
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
	// Edges is the number of `graft edge` processes in front of the
	// nodes; with edges the workloads read through them (see
	// workload.Env.Edges). Default 0.
	Edges int
	// UpgradeBinary, when set, is the graft binary the rolling-restart
	// nemesis restarts nodes into (a rolling upgrade from Binary).
	UpgradeBinary string
	// NodeArgs are extra `graft node` flags.
	NodeArgs []string
	// Secure runs the cluster with TLS and tokens (harness.Config.Secure).
	Secure bool
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
	if o.Workload == "sqlite-bank" {
		if o.Secure {
			return errors.New("jepsen: sqlite-bank does not run with --secure (its client processes take no token)")
		}
		if o.Processes <= 0 {
			o.Processes = 6 // each is an OS process with its own SQLite
		}
	}
	for _, n := range o.Nemeses {
		if (n == "kill-edge" || n == "partition-edge") && o.Edges <= 0 {
			return fmt.Errorf("jepsen: nemesis %s needs edges (--edge N)", n)
		}
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

// retention reports whether the run's nodes keep a bounded history (the
// gc nemesis): then the checkers accept logs that start at a horizon and
// reads below it that answer out_of_range.
func (o *Options) retention() bool { return slices.Contains(o.Nemeses, "gc") }

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
	unlock, err := lockOut(opts.Out)
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()
	w, err := workload.New(opts.Workload, opts.Seed)
	if err != nil {
		return Outcome{}, err
	}
	hcfg := harness.DefaultConfig()
	hcfg.Binary, hcfg.Dir, hcfg.Nodes, hcfg.Logger = opts.Binary, filepath.Join(opts.Out, "cluster"), opts.Nodes, log.With("component", "harness")
	// Flush often, so the object store is in play during the run.
	// --pprof: a final step that hangs saves the nodes' goroutine dumps
	// (see readFinal).
	hcfg.NodeArgs = []string{"--flush-max-age", "300ms", "--flush-interval", "50ms", "--pprof"}
	if opts.retention() {
		hcfg.NodeArgs = append(hcfg.NodeArgs, nemesis.GCNodeArgs...)
	}
	hcfg.NodeArgs = append(hcfg.NodeArgs, opts.NodeArgs...)
	hcfg.Edges = opts.Edges
	hcfg.UpgradeBinary = opts.UpgradeBinary
	hcfg.Secure = opts.Secure
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
		Endpoints: c.ClientEndpoints(), Edges: c.EdgeEndpoints(), Rec: rec, Seed: opts.Seed,
		Processes: opts.Processes, Volumes: opts.Volumes, OpTimeout: opts.OpTimeout,
		ClientOptions: c.ClientOptions(), Log: log.With("component", "workload"),
		Binary: opts.Binary, Dir: filepath.Join(opts.Out, "clients"),
		ReadRetained: opts.retention(),
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
	exposed := newExposures(rec.Start(), c.Nodes())
	nem := tracked{adapter{c}, exposed}
	probe := startProbe(c, rec.Start())
	go func() {
		windowsCh <- nemesis.Run(runCtx, nem, nemesis.Schedule{
			Names: opts.Nemeses, Seed: opts.Seed, Quiet: opts.Quiet, Hold: opts.Hold,
			Start: rec.Start(), OpTimeout: opts.OpTimeout, Log: log.With("component", "nemesis"),
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
	// the reads without time (they would all come back unknown). Healing
	// includes the membership: a node that a membership fault cut short
	// left out of the configuration (removed, maybe restarted, not re-added)
	// rejoins first; otherwise every later step waits on a node that can
	// never catch up (seen: register membership seed 9). The nemeses'
	// tracked view heals, so that the exposures close.
	nemesis.HealAll(nem, log)
	step(ctx, 2*time.Minute, c.Rejoin, log, "members did not rejoin after healing")
	step(ctx, time.Minute, c.WaitReady, log, "cluster not ready after healing")
	step(ctx, time.Minute, func(ctx context.Context) error { _, err := c.WaitConverged(ctx); return err }, log, "cluster did not converge after healing")
	var lastEnd time.Duration
	if len(windows) > 0 {
		lastEnd = windows[len(windows)-1].End
	}
	samples := probe.stop(lastEnd + effectsSettle)
	if f, ok := w.(interface {
		Final(ctx context.Context, env *workload.Env, budget time.Duration)
	}); ok {
		f.Final(ctx, env, finalReadBudget)
	}
	ops := rec.Ops()
	results := check(ctx, c, w, ops, opts, log)
	writeEdgeStats(ctx, c, opts.Out, log)

	run := report.Run{
		Workload: w.Name(), Nemeses: opts.Nemeses, Seed: opts.Seed, Ops: ops, Results: results.results,
		Linearization: results.lin,
	}
	for _, win := range windows {
		run.Windows = append(run.Windows, report.Window{Name: win.Name + ": " + win.What, Start: win.Start, End: win.End})
	}
	var nodeIDs []string
	for i := range c.Nodes() {
		run.NodeLogs = append(run.NodeLogs, c.LogPath(i))
		nodeIDs = append(nodeIDs, c.NodeID(i))
	}
	for i := range c.Edges() {
		run.NodeLogs = append(run.NodeLogs, c.EdgeLogPath(i))
	}
	run.Effects = effectsOf(windows, samples, exposed.spans(), ops, nodeIDs)
	if err := report.Write(opts.Out, run); err != nil {
		log.Warn("write report", "err", err)
	}
	return Outcome{Verdict: report.Overall(run), Summary: report.Summary(run), Dir: opts.Out}, nil
}

// Budgets of the final phase's steps. Each step gets its own, so that one
// that cannot finish (a node that never converges, a flush that hangs)
// does not leave the ones after it without time.
const (
	finalFlushBudget    = time.Minute
	finalConvergeBudget = 30 * time.Second
	finalReadBudget     = time.Minute // per node, and for the bucket
	finalPagesBudget    = 3 * time.Minute
)

// step runs f with its own budget d and logs its error as what.
func step(ctx context.Context, d time.Duration, f func(ctx context.Context) error, log *slog.Logger, what string) {
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := f(sctx); err != nil {
		log.Warn(what, "err", err)
	}
}

type checked struct {
	results []checker.Result
	lin     []checker.VolumeLinearization
}

// check reads the final state and runs every checker that applies.
func check(ctx context.Context, c *harness.Cluster, w workload.Workload, ops []history.Op, opts Options, log *slog.Logger) checked {
	var out checked
	vids := checkedVIDs(w.VIDs(), ops)
	cl, cerr := client.New(c.Endpoints(), c.ClientOptions()...)
	var dumped bool
	diagnose := func(why string) {
		if dumped {
			return
		}
		dumped = true
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		files, err := c.DumpGoroutines(dctx, filepath.Join(opts.Out, "goroutines"))
		log.Warn("final phase: saved the nodes' goroutine dumps", "why", why, "files", files, "err", err)
	}
	fin := readFinal(ctx, c, cl, vids, log, diagnose, opts.retention())
	finals := fin.chains
	// Porcupine gets the history with unknown commits settled by the
	// final chains (see checker.ResolveUnknown); the others the original.
	resolved, applied, dropped := checker.ResolveUnknown(ops, finals)
	if w.Name() != "sqlite-bank" { // no raw commits or head reads: checker.SQLBank orders its transfers
		lin, vl := checker.Linearizable(resolved, opts.CheckTimeout)
		lin.Stats["unknown_commits_applied"] = applied
		lin.Stats["unknown_commits_never_applied"] = dropped
		out.results = append(out.results, lin)
		out.lin = vl
	}
	chain, bucket := checkFinal(ops, fin, cerr, opts.retention())
	if w.Name() == "sqlite-bank" {
		chain = checker.ChainReplicas(fin.chains, fin.unread...)
	}
	out.results = append(out.results, chain)

	if cerr == nil {
		pctx, cancel := context.WithTimeout(ctx, finalPagesBudget)
		out.results = append(out.results, checker.Pages(ops, func(vid string, lsn, seed uint64, pages []uint32) error {
			return checkPages(pctx, cl, vid, lsn, seed, pages, opts.retention())
		}))
		cancel()
	}
	if opts.retention() && cerr == nil && w.Name() == "register" {
		// Every retained snapshot, every page (what GC must keep).
		var ref map[string][]checker.Entry
		for _, f := range finals {
			if f != nil {
				ref = f
				break
			}
		}
		if ref != nil {
			rctx, cancel := context.WithTimeout(ctx, finalPagesBudget)
			out.results = append(out.results, checkRetained(rctx, cl, ops, ref, fin.horizons))
			cancel()
		}
	}
	if opts.Edges > 0 && (w.Name() == "register" || w.Name() == "ryw") {
		zero := workload.PageSum(make([]byte, volume.PageSize))
		out.results = append(out.results, checker.PageReads(resolved, func(seed uint64, idx uint32) string {
			return workload.PageSum(workload.PageData(seed, idx))
		}, zero))
	}
	switch w.Name() {
	case "bank":
		out.results = append(out.results, checker.Bank(ops, workload.BankTotal, workload.BankAccounts))
	case "sqlite-bank":
		out.results = append(out.results, checker.Bank(ops, workload.BankTotal, workload.BankAccounts),
			checker.SQLBank(ops, workload.BankAccounts))
	case "ryw":
		out.results = append(out.results, checker.ReadYourWrites(ops))
	}
	if r, ok := quarantineResult(ops, finals, opts); ok {
		out.results = append(out.results, r)
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

// checkFinal checks the final state: the chains read from every node (a
// node that answered data_loss or not_found is unread and an anomaly: the
// data it says is flushed is gone), and the bucket after a final flush (a
// gap-free prefix of every chain, every record's segment present and
// whole). cerr is the error of making the runner's client (nothing could
// be asked).
//
// With retention the chains start at each volume's horizon and the bucket's
// logs at the checkpoint before it (checker.ChainFrom, FinalBucketFrom).
func checkFinal(ops []history.Op, fin final, cerr error, retention bool) (chain, bucket checker.Result) {
	if retention {
		chain = checker.ChainFrom(ops, fin.chains, fin.horizons, fin.unread...)
	} else {
		chain = checker.Chain(ops, fin.chains, fin.unread...)
	}
	if cerr != nil {
		bucket = checker.Result{Name: "bucket", Valid: checker.Unknown, Anomalies: []string{}, Stats: map[string]any{"unknown_because": "client: " + cerr.Error()}}
		return chain, bucket
	}
	var ref map[string][]checker.Entry
	for _, f := range fin.chains {
		if f != nil {
			ref = f
			break
		}
	}
	bucket = checker.FinalBucketFrom(ref, fin.bucket.chains, fin.bucket.starts, fin.flushErr, fin.bucketErr)
	// What the stateless reader found beyond the log (readBucket reads
	// every record): data a record names and the bucket lacks. And where
	// FinalBucket had nothing to compare with (no node's chain) or did not
	// look (the read failed part way; the volumes read in full are in
	// chains), the gaps in the log, which need no reference.
	found := fin.bucket.missing
	if ref == nil || fin.bucketErr != nil {
		found = append(bucketGaps(fin.bucket.chains, fin.bucket.starts), found...)
	}
	bucket = withAnomalies(bucket, found)
	if bucket.Stats == nil {
		bucket.Stats = map[string]any{}
	}
	bucket.Stats["deltas_checked"] = fin.bucket.deltas
	bucket.Stats["checkpoints_checked"] = fin.bucket.gens
	return chain, bucket
}

// final is the cluster's end state: every node's chains and the bucket
// after a final flush.
//
// Errors are classified as they are recorded (finalReadError): one that
// wraps checker.ErrUnreadable says only that the read could not be made;
// any other is an answer about the data, which the checkers report.
type final struct {
	chains []map[string][]checker.Entry
	unread []checker.Unread // nodes whose chains are nil, and why
	// horizons are, with retention, each volume's oldest readable LSN as
	// the nodes named it when their chains were read (the highest).
	horizons            map[string]uint64
	bucket              bucketState
	flushErr, bucketErr error
}

func newFinal(nodes int) final {
	return final{chains: make([]map[string][]checker.Entry, nodes), horizons: map[string]uint64{}}
}

// setChains records node i's final read: its chains, or why there are none.
func (f *final) setChains(i int, m map[string][]checker.Entry, err error) {
	if err != nil {
		f.chains[i] = nil
		f.unread = append(f.unread, checker.Unread{Node: i, Err: finalReadError(err)})
		return
	}
	f.chains[i] = m
}

// setFlush records the final flush's outcome.
func (f *final) setFlush(err error) { f.flushErr = finalReadError(err) }

// setBucket records the read of the bucket.
func (f *final) setBucket(b bucketState, err error) {
	f.bucket, f.bucketErr = b, finalReadError(err)
}

// finalReadError classifies an error of a final read (a node's chains,
// the bucket, the final flush). An error that says only that no answer
// came (a timeout, unavailable, the object store unreachable) is wrapped
// in checker.ErrUnreadable: the checkers can then not decide. Any other
// error is an answer about the data and is returned as is, for the
// checkers to report: data_loss or not_found from a node (it says the
// range is flushed and the object store lacks it), an object listed and
// then not found, a gap before the flushed LSNs, a corrupt object, a
// layout violation, an internal error.
func finalReadError(err error) error {
	if err == nil || errors.Is(err, checker.ErrUnreadable) {
		return err
	}
	var se *flusher.StoreError
	if transient(err) || errors.As(err, &se) && !errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("%w: %w", checker.ErrUnreadable, err)
	}
	return err
}

// readFinal flushes, then reads every volume's chain from every node and
// the bucket, all at one applied index. A commit whose client gave up (an
// unknown outcome) may still reach the log after the workload stopped (a
// request that sat in a paused node's socket until SIGCONT, or one
// cancelled after Raft had it), and reads on either side of it would look
// like replicas that differ or a bucket ahead of the chain (seen: register
// pause seed 2). So all of it is repeated until the common applied index
// is the same after the reads and a second flush as after the first.
//
// Each step has its own budget (finalFlushBudget and the others): a node
// that never converges must not use up the time of the reads after it.
// Only voting members are read: a node outside the configuration (one
// that could not rejoin) holds no replica, and its empty state would look
// like lost commits; it is left unread, which makes the chain verdict
// unknown, never valid.
//
// diagnose is called when a step fails for want of an answer (the flush,
// the convergence), to save what the nodes were doing.
func readFinal(ctx context.Context, c *harness.Cluster, cl *client.Client, vids []volume.ID, log *slog.Logger, diagnose func(why string), retention bool) final {
	within := func(d time.Duration, f func(ctx context.Context) error) error {
		sctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return f(sctx)
	}
	flush := func() error {
		if cl == nil {
			return nil
		}
		return within(finalFlushBudget, cl.Flush)
	}
	converged := func() (idx uint64, err error) {
		err = within(finalConvergeBudget, func(ctx context.Context) error {
			idx, err = c.WaitConverged(ctx)
			return err
		})
		return idx, err
	}
	var f final
	for attempt := 1; ; attempt++ {
		f = newFinal(c.Nodes())
		f.setFlush(flush())
		if f.flushErr != nil {
			log.Warn("final flush", "err", f.flushErr)
			diagnose("final flush: " + f.flushErr.Error())
		}
		before, berr := converged()
		if berr != nil {
			log.Warn("final reads: nodes did not converge", "err", berr)
			diagnose("convergence: " + berr.Error())
		}
		var members map[int]string
		if err := within(finalConvergeBudget, func(ctx context.Context) (err error) {
			members, err = c.Members(ctx)
			return err
		}); err != nil {
			log.Warn("final reads: read the configuration", "err", err)
		}
		for i, ep := range c.Endpoints() {
			if members != nil && members[i] != "voter" {
				log.Warn("final read: not a voting member; left unread", "node", i, "suffrage", members[i])
				f.setChains(i, nil, fmt.Errorf("%w: node %d is not a voting member (%q)", checker.ErrUnreadable, i, members[i]))
				continue
			}
			var m map[string][]checker.Entry
			var hs map[string]uint64
			err := within(finalReadBudget, func(ctx context.Context) (err error) {
				m, hs, err = readChains(ctx, ep, vids, c.ClientOptions(), retention)
				return err
			})
			for vid, h := range hs {
				f.horizons[vid] = max(f.horizons[vid], h)
			}
			if err != nil {
				log.Warn("final read", "node", i, "err", err)
			}
			f.setChains(i, m, err)
		}
		// The bucket is read even when the flush failed: it must still
		// be a gap-free prefix, and what it lacks is a finding.
		if cl != nil {
			var b bucketState
			err := within(finalReadBudget, func(ctx context.Context) (err error) {
				b, err = readBucket(ctx, c.DirectObjectStoreURL(), vids, retention)
				return err
			})
			f.setBucket(b, err)
		}
		// A commit that landed between the flush and the first index is
		// in the chains but not in the bucket: flush again; with nothing
		// buffered that writes no entry, so the index does not move.
		if f.flushErr == nil {
			f.setFlush(flush())
		}
		after, aerr := converged()
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
// applied everything (the caller waited for convergence). With retention a
// volume's chain starts at its horizon: the first pull answers
// out_of_range naming the oldest readable LSN, and the chain is pulled
// from there; horizons holds those LSNs.
func readChains(ctx context.Context, endpoint string, vids []volume.ID, opts []client.Option, retention bool) (map[string][]checker.Entry, map[string]uint64, error) {
	cl, err := client.New([]string{endpoint}, append([]client.Option{client.WithAttempts(5)}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	out := map[string][]checker.Entry{}
	horizons := map[string]uint64{}
	for _, vid := range vids {
		var chain []checker.Entry
		for since := volume.LSN(0); ; {
			_, cs, more, err := cl.PullCommits(ctx, vid, since, 0, 1000, client.ReadOptions{Consistency: client.Stale})
			if oldest, ok := oldestReadable(err); retention && ok && oldest > uint64(since)+1 {
				// GC moved the horizon (maybe while pulling): start again
				// from it.
				chain, since = nil, volume.LSN(oldest-1)
				horizons[vid.String()] = oldest
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("pull commits of %s since %d: %w", vid, since, err)
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
	return out, horizons, nil
}

// oldestRE matches the oldest readable LSN in an out_of_range answer
// (fsm.RetentionError).
var oldestRE = regexp.MustCompile(`the oldest readable lsn is (\d+)`)

// oldestReadable returns the oldest readable LSN an out_of_range error
// names.
func oldestReadable(err error) (uint64, bool) {
	if err == nil || connect.CodeOf(err) != connect.CodeOutOfRange {
		return 0, false
	}
	m := oldestRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	n, perr := strconv.ParseUint(m[1], 10, 64)
	return n, perr == nil
}

// checkPages reads an acknowledged commit's pages at its LSN and compares
// them with what it wrote.
//
// With retention a commit may be below the volume's horizon by now: its
// read must then answer out_of_range naming an oldest readable LSN above
// it (checker.ErrBelowHorizon); an out_of_range that names none, or one at
// or below the commit, is an anomaly.
func checkPages(ctx context.Context, cl *client.Client, vid string, lsn, seed uint64, pages []uint32, retention bool) error {
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
		if retention && connect.CodeOf(err) == connect.CodeOutOfRange {
			oldest, ok := oldestReadable(err)
			switch {
			case !ok:
				return fmt.Errorf("out_of_range without the oldest readable lsn: %w", err)
			case oldest <= lsn:
				return fmt.Errorf("out_of_range at lsn %d naming oldest readable lsn %d, which is not above it: %w", lsn, oldest, err)
			}
			return fmt.Errorf("%w: %w", checker.ErrBelowHorizon, err)
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
func (a adapter) Edges() int                                 { return a.c.Edges() }
func (a adapter) KillEdge(i int) error                       { return a.c.KillEdge(i) }
func (a adapter) RestartEdge(i int) error                    { return a.c.RestartEdge(i) }
func (a adapter) PartitionEdge(i int, cut bool) error        { return a.c.PartitionEdge(i, cut) }
func (a adapter) RemoveAndReadd(ctx context.Context, i int) error {
	return a.c.RemoveAndReadd(ctx, i)
}

func (a adapter) SetOutboundDelay(i int, d, jitter time.Duration) error {
	return a.c.SetOutboundDelay(i, d, jitter)
}

func (a adapter) Rejoin(ctx context.Context) error { return a.c.Rejoin(ctx) }

// Flush runs a flush round of every buffered commit (the gc nemesis).
func (a adapter) Flush(ctx context.Context) error {
	cl, err := client.New(a.c.Endpoints(), a.c.ClientOptions()...)
	if err != nil {
		return err
	}
	return cl.Flush(ctx)
}

func (a adapter) GracefulRestart(ctx context.Context, i int) error {
	return a.c.GracefulRestart(ctx, i)
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

// writeEdgeStats saves where the edges' pages came from (cache, upstream,
// bucket), their bucket errors, requests, cached ranges and graft
// resolutions, from each edge's /metrics (its current process: a
// restarted edge counts from its restart), into
// edges.txt of the report: the evidence that both read paths ran.
func writeEdgeStats(ctx context.Context, c *harness.Cluster, out string, log *slog.Logger) {
	if c.Edges() == 0 {
		return
	}
	var b strings.Builder
	for i := range c.Edges() {
		m, err := c.EdgeMetrics(ctx, i)
		if err != nil {
			fmt.Fprintf(&b, "e%d: %v\n", i+1, err)
			continue
		}
		for line := range strings.Lines(m) {
			if strings.HasPrefix(line, "graft_edge_pages_total") || strings.HasPrefix(line, "graft_edge_bucket_errors_total") ||
				strings.HasPrefix(line, "graft_edge_requests_total") || strings.HasPrefix(line, "graft_edge_ranges_total") ||
				strings.HasPrefix(line, "graft_edge_graft_resolutions_total") {
				fmt.Fprintf(&b, "e%d %s", i+1, line)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(out, "edges.txt"), []byte(b.String()), 0o644); err != nil {
		log.Warn("write edge stats", "err", err)
	}
}
