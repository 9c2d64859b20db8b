package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/workload"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// The quarantine nemesis is registered here rather than in the Names
// literal, so that it lives in its own file.
func init() { Names = append(Names, "quarantine") }

// QuarantineProcess is the first history process number of the quarantine
// nemesis; each of its operations takes the next one (its checks run
// concurrently, and a process runs one operation at a time).
const QuarantineProcess = 1 << 24

// quarantinePageCount is the page count of the nemesis's commits.
const quarantinePageCount = 8

// QuarantineCluster lists and lifts quarantines (jepsen/harness
// implements it).
type QuarantineCluster interface {
	// Quarantined returns the volumes node i's own state lists as
	// quarantined.
	Quarantined(ctx context.Context, i int) ([]*graftv1.QuarantinedVolume, error)
	// Unquarantine lifts a volume's quarantine on the leader.
	Unquarantine(ctx context.Context, vid string) error
}

// QuarantineEnv is what the quarantine nemesis acts with besides Cluster;
// jepsen.Run fills it in (Schedule.Quarantine) when the nemesis is
// scheduled.
type QuarantineEnv struct {
	// Cluster lists and lifts quarantines. Required.
	Cluster QuarantineCluster
	// Store is the object store, reached around every fault. Required.
	Store objstore.Store
	// Client reaches the nodes' real APIs, around every fault. Required.
	Client *client.Client
	// Rec is the run's history: the nemesis's commits and reads, and what
	// it observed (history.FQuarantine*). Required.
	Rec *history.Recorder
	// Workload are the workload's volumes: candidates for quarantine, and
	// volumes that must keep flushing while another is quarantined.
	Workload []volume.ID
	// Own are the nemesis's own volumes (see OwnVolumes): Own[0] is the
	// sacrificial one it quarantines, Own[1] a control it only commits to.
	// Both are committed to through the cluster and recorded, so every
	// checker covers them.
	Own [2]volume.ID
	// Wait bounds each wait for an effect (the quarantine on every node,
	// a flush). Default 20s.
	Wait time.Duration
	// Seed makes the nemesis's commit contents reproducible.
	Seed uint64
	Log  *slog.Logger

	procs atomic.Int64 // numbers the nemesis's operations, across windows
}

// OwnVolumes mints the quarantine nemesis's two volumes from seed (not
// the workload's: those come from another stream).
func OwnVolumes(seed uint64) [2]volume.ID {
	rng := rand.New(rand.NewPCG(seed, 0x7175617261))
	var out [2]volume.ID
	for i := range out {
		out[i][0] = volume.IDPrefix
		for j := 1; j < len(out[i]); j++ {
			out[i][j] = byte(rng.Uint32())
		}
	}
	return out
}

// quarantine is the nemesis: each window puts a conflicting object at one
// volume's next log key in the bucket, so the next flush round that
// reaches it quarantines the volume; it checks and records, while the
// fault holds, that every node lists the volume as quarantined, that a
// commit to it is refused (failed_precondition naming the key) while
// reads of it work, and that every other volume's buffered commits reach
// the bucket. On heal it removes the object, lifts the quarantine and
// checks that the volume flushes again. checker.Quarantine judges what it
// recorded.
type quarantine struct {
	env *QuarantineEnv
	log *slog.Logger

	rngMu sync.Mutex // the window's checks run concurrently
	rng   *rand.Rand

	// One window's state, set by start for stop.
	target  volume.ID
	key     string
	planted bool
}

// quarantineFault returns one window of the quarantine nemesis; its
// choices come from the schedule's rng.
func quarantineFault(env *QuarantineEnv, rng *rand.Rand) fault {
	q := &quarantine{env: env, rng: rand.New(rand.NewPCG(rng.Uint64(), 0x71))}
	return fault{start: q.start, stop: func(ctx context.Context, _ Cluster) error { return q.stop(ctx) }}
}

// intN draws from the window's rng.
func (q *quarantine) intN(n int) int {
	q.rngMu.Lock()
	defer q.rngMu.Unlock()
	return q.rng.IntN(n)
}

// uint64 draws from the window's rng.
func (q *quarantine) uint64() uint64 {
	q.rngMu.Lock()
	defer q.rngMu.Unlock()
	return q.rng.Uint64()
}

func (q *quarantine) wait() time.Duration {
	if q.env.Wait > 0 {
		return q.env.Wait
	}
	return 20 * time.Second
}

// op records an operation's invocation and returns a function that
// records its completion.
func (q *quarantine) op(inv history.Op) func(done history.Op) {
	inv.Process = QuarantineProcess + int(q.env.procs.Add(1))
	inv.Type = history.Invoke
	if inv.F != history.FQuarantineStatus {
		inv.Node = -1
	}
	q.env.Rec.Add(inv)
	return func(done history.Op) {
		done.Process, done.F, done.Node, done.VID = inv.Process, inv.F, inv.Node, inv.VID
		q.env.Rec.Add(done)
	}
}

func (q *quarantine) start(ctx context.Context, c Cluster) (string, error) {
	q.planted, q.key = false, ""
	env := q.env
	if env == nil || env.Store == nil || env.Client == nil || env.Rec == nil || env.Cluster == nil {
		return "", errors.New("quarantine nemesis: no QuarantineEnv (object store, client, history, cluster)")
	}
	q.log = env.Log
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	// The target: the nemesis's own volume, or one the workload races on.
	q.target = env.Own[0]
	whose := "the nemesis's own volume"
	if len(env.Workload) > 0 && q.intN(2) == 0 {
		q.target = env.Workload[q.intN(len(env.Workload))]
		whose = "workload volume"
	}
	garbage := q.intN(2) == 0
	var what string
	for attempt := 0; ; attempt++ {
		flushed, err := q.flushedLSN(ctx, q.target)
		if err != nil {
			return "", fmt.Errorf("read flushed lsn of %s: %w", q.target, err)
		}
		lsn := flushed + 1
		key := segment.LogKey(q.target, lsn)
		data, desc := q.payload(garbage, q.target, lsn)
		done := q.op(history.Op{F: history.FQuarantinePlant, VID: q.target.String(), LSN: uint64(lsn), Key: key})
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = env.Store.PutIfAbsent(pctx, key, data)
		cancel()
		switch {
		case err == nil:
			done(history.Op{Type: history.OK, LSN: uint64(lsn), Key: key})
			q.planted, q.key = true, key
			what = fmt.Sprintf("%s at %s (%s %s)", desc, key, whose, q.target)
		case errors.Is(err, objstore.ErrExists) && attempt < 20:
			// A flush round wrote that record first: go one further.
			done(history.Op{Type: history.Fail, Error: "a flush wrote the record first: " + err.Error()})
			continue
		default:
			done(history.Op{Type: history.Info, Error: err.Error()})
			return "", fmt.Errorf("plant %s: %w", key, err)
		}
		break
	}
	// The checks outlive the run's time limit, which may fall inside the
	// window: each is bounded by its own deadline only, so that a failure
	// it records is what it saw in that time.
	ctx = context.WithoutCancel(ctx)
	// A commit to the target makes the next round reach the key (the
	// workload's commits would too, on its volumes).
	q.commit(ctx, q.target)

	seen := q.awaitQuarantine(ctx, c.N())
	what += fmt.Sprintf("; quarantined on %d/%d nodes", seen, c.N())
	if seen == c.N() {
		what += "; probe: " + q.probe(ctx)
		q.read(ctx, q.target)
	}
	// Only now: commits that reach the bucket after the quarantine (or
	// after the wait for it) need a round that completed. A round that
	// is stuck on the conflict has still written the records of the
	// other volumes it holds (each retry writes them again), so their
	// commits from before it was planned prove nothing.
	others := q.awaitOthersFlush(ctx)
	what += fmt.Sprintf("; %d other volumes flushed", others)
	return what, nil
}

// payload returns the conflicting object for vid's log key at lsn: bytes
// that do not decode, or a valid record of one commit with a hash the
// cluster never saw.
func (q *quarantine) payload(garbage bool, vid volume.ID, lsn volume.LSN) ([]byte, string) {
	if garbage {
		b := make([]byte, 16+q.intN(200))
		for i := range b {
			b[i] = byte(q.uint64())
		}
		return b, fmt.Sprintf("%d bytes of garbage", len(b))
	}
	var h volume.Hash
	for i := range h {
		h[i] = byte(q.uint64())
	}
	rec := segment.Record{VID: vid, From: lsn, To: lsn, Commits: []segment.RecordCommit{
		{LSN: lsn, PageCount: quarantinePageCount, TimeUnixMs: time.Now().UnixMilli(), Hash: h},
	}}
	b, err := rec.AppendBinary(nil)
	if err != nil { // cannot happen: the record is valid
		return []byte("not a record"), "garbage (" + err.Error() + ")"
	}
	return b, "a valid log record of another commit"
}

// awaitQuarantine waits until every node lists the target as quarantined
// (one status event per node) and returns how many did.
func (q *quarantine) awaitQuarantine(ctx context.Context, n int) int {
	var seen atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			done := q.op(history.Op{F: history.FQuarantineStatus, Node: i, VID: q.target.String(), Key: q.key})
			deadline := time.Now().Add(q.wait())
			for {
				list, err := q.env.Cluster.Quarantined(ctx, i) // bounded by the harness
				if err == nil {
					for _, qv := range list {
						if qv.GetVid() == q.target.String() {
							if qv.GetKey() == q.key {
								seen.Add(1)
							}
							done(history.Op{Type: history.OK, Key: qv.GetKey(), Error: qv.GetReason()})
							return
						}
					}
				}
				if time.Now().After(deadline) {
					if err != nil {
						done(history.Op{Type: history.Info, Error: err.Error()})
					} else {
						done(history.Op{Type: history.Fail, Error: fmt.Sprintf("not listed as quarantined after %s; status lists %s", q.wait(), describeQuarantined(list))})
					}
					return
				}
				sleep(ctx, 100*time.Millisecond)
			}
		})
	}
	wg.Wait()
	return int(seen.Load())
}

func describeQuarantined(list []*graftv1.QuarantinedVolume) string {
	if len(list) == 0 {
		return "none"
	}
	var s []string
	for _, qv := range list {
		s = append(s, qv.GetVid()+" ("+qv.GetKey()+")")
	}
	return strings.Join(s, ", ")
}

// awaitOthersFlush commits to the nemesis's volumes that are not the
// target, then waits until every other volume with buffered commits (its
// head now above its flushed watermark in the bucket) has them in the
// bucket, one flush event each. It returns how many did.
func (q *quarantine) awaitOthersFlush(ctx context.Context) int {
	var others []volume.ID
	for _, v := range q.env.Own {
		if v != q.target {
			q.commit(ctx, v)
			others = append(others, v)
		}
	}
	for _, v := range q.env.Workload {
		if v != q.target {
			others = append(others, v)
		}
	}
	var flushed atomic.Int64
	var wg sync.WaitGroup
	for _, vid := range others {
		wg.Go(func() {
			if q.awaitFlushed(ctx, history.FQuarantineFlush, vid) {
				flushed.Add(1)
			}
		})
	}
	wg.Wait()
	return int(flushed.Load())
}

// awaitFlushed reads vid's head (linearizably) and its flushed watermark
// in the bucket; if the head is above it, records an event f and waits
// until the bucket reaches the head. It reports whether it did.
func (q *quarantine) awaitFlushed(ctx context.Context, f string, vid volume.ID) bool {
	rctx, cancel := context.WithTimeout(ctx, q.wait())
	snap, err := q.env.Client.Snapshot(rctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable})
	cancel()
	if err != nil {
		q.log.Warn("quarantine nemesis: read head", "vid", vid, "err", err)
		return false
	}
	flushed, err := q.flushedLSN(ctx, vid)
	if err != nil || flushed >= snap.LSN {
		return false // nothing buffered to show
	}
	done := q.op(history.Op{F: f, VID: vid.String(), Base: uint64(flushed), LSN: uint64(snap.LSN)})
	deadline := time.Now().Add(q.wait())
	for {
		got, err := q.flushedLSN(ctx, vid)
		if err == nil && got >= snap.LSN {
			done(history.Op{Type: history.OK, Base: uint64(flushed), LSN: uint64(snap.LSN), Head: uint64(got)})
			return true
		}
		if err == nil {
			flushed = got
		}
		if time.Now().After(deadline) {
			out := history.Op{Type: history.Fail, LSN: uint64(snap.LSN), Head: uint64(flushed),
				Error: fmt.Sprintf("the bucket stayed at lsn %d, below the head %d, for %s", flushed, snap.LSN, q.wait())}
			if err != nil {
				out.Type, out.Error = history.Info, err.Error()
			}
			done(out)
			return false
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// commit commits one page to vid on its head, recorded as an ordinary
// commit (so every checker covers it). Errors are recorded, not returned.
func (q *quarantine) commit(ctx context.Context, vid volume.ID) {
	cctx, cancel := context.WithTimeout(ctx, q.wait())
	defer cancel()
	snap, err := q.env.Client.Snapshot(cctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable})
	if err != nil {
		q.log.Warn("quarantine nemesis: read head", "vid", vid, "err", err)
		return
	}
	inv, pages := q.commitOp(vid, snap.LSN)
	done := q.op(inv)
	res, err := q.env.Client.Commit(cctx, vid, snap.LSN, quarantinePageCount, pages)
	out := inv
	switch {
	case err == nil:
		out.Type, out.LSN = history.OK, uint64(res.LSN)
	case errors.Is(err, client.ErrConflict):
		out.Type, out.Error = history.Fail, err.Error()
		var ce *client.ConflictError
		if errors.As(err, &ce) {
			out.Head = uint64(ce.Head.LSN)
		}
	default:
		out.Type, out.Error = history.Info, err.Error()
	}
	done(out)
}

// commitOp builds a commit of one page to vid on base: its invocation
// event and its pages.
func (q *quarantine) commitOp(vid volume.ID, base volume.LSN) (history.Op, []volume.PageWrite) {
	seed := q.uint64() ^ q.env.Seed
	idx := uint32(1 + q.intN(quarantinePageCount))
	pages := []volume.PageWrite{{Idx: volume.PageIdx(idx), Data: workload.PageData(seed, idx)}}
	sorted, _ := volume.ValidateCommit(quarantinePageCount, pages, volume.Limits{})
	hash := volume.CommitHash(vid, base+1, quarantinePageCount, sorted).String()
	return history.Op{F: "commit", VID: vid.String(), Base: uint64(base), Hash: hash, Seed: seed, Pages: []uint32{idx}}, pages
}

// probe commits to the quarantined target on its head: the answer must be
// failed_precondition naming the key. It returns the answer's gist.
func (q *quarantine) probe(ctx context.Context) string {
	cctx, cancel := context.WithTimeout(ctx, q.wait())
	defer cancel()
	snap, err := q.env.Client.Snapshot(cctx, q.target, 0, client.ReadOptions{Consistency: client.Linearizable})
	if err != nil {
		return "no head: " + err.Error()
	}
	inv, pages := q.commitOp(q.target, snap.LSN)
	inv.F, inv.Key = history.FQuarantineProbe, q.key
	done := q.op(inv)
	res, err := q.env.Client.Commit(cctx, q.target, snap.LSN, quarantinePageCount, pages)
	out := inv
	switch {
	case err == nil:
		out.Type, out.LSN = history.OK, uint64(res.LSN)
		done(out)
		return fmt.Sprintf("ACCEPTED at lsn %d", res.LSN)
	case connect.CodeOf(err) == connect.CodeFailedPrecondition:
		out.Type, out.Error = history.Fail, err.Error()
	default:
		out.Type, out.Error = history.Info, err.Error()
	}
	done(out)
	return connect.CodeOf(err).String()
}

// read reads vid's head and the hash there, linearizably, recorded as an
// ordinary read (Porcupine checks it).
func (q *quarantine) read(ctx context.Context, vid volume.ID) {
	cctx, cancel := context.WithTimeout(ctx, q.wait())
	defer cancel()
	done := q.op(history.Op{F: "read", VID: vid.String()})
	snap, err := q.env.Client.Snapshot(cctx, vid, 0, client.ReadOptions{Consistency: client.Linearizable})
	var hash string
	if err == nil && snap.LSN > 0 {
		var cs []client.CommitInfo
		_, cs, _, err = q.env.Client.PullCommits(cctx, vid, snap.LSN-1, snap.LSN, 1, client.ReadOptions{Consistency: client.AtLeastLSN, MinLSN: snap.LSN})
		if err == nil && (len(cs) != 1 || cs[0].LSN != snap.LSN) {
			err = fmt.Errorf("pull commits at %d returned %d entries", snap.LSN, len(cs))
		}
		if err == nil {
			hash = cs[0].Hash.String()
		}
	}
	if err != nil {
		done(history.Op{Type: history.Fail, Error: err.Error()})
		return
	}
	done(history.Op{Type: history.OK, LSN: uint64(snap.LSN), Hash: hash})
}

// stop removes the planted object, lifts the quarantine and waits until
// the target's buffered commits are in the bucket.
func (q *quarantine) stop(ctx context.Context) error {
	if !q.planted {
		return nil
	}
	q.planted = false
	// As in start: the heal and its check run to their own deadlines (the
	// planted object must not outlive the run).
	ctx = context.WithoutCancel(ctx)
	done := q.op(history.Op{F: history.FQuarantineHeal, VID: q.target.String(), Key: q.key})
	deadline := time.Now().Add(q.wait())
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := q.env.Store.Delete(dctx, q.key)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			done(history.Op{Type: history.Info, Error: "remove the planted object: " + err.Error()})
			return fmt.Errorf("remove %s: %w", q.key, err)
		}
		sleep(ctx, 200*time.Millisecond)
	}
	uctx, cancel := context.WithTimeout(ctx, q.wait())
	defer cancel()
	if err := q.env.Cluster.Unquarantine(uctx, q.target.String()); err != nil {
		// A retry of a call that took effect, or a volume never
		// quarantined, answers "not quarantined": the checks of the
		// window say which.
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "not quarantined") {
			done(history.Op{Type: history.Fail, Error: "unquarantine: " + err.Error()})
			return fmt.Errorf("unquarantine %s: %w", q.target, err)
		}
		q.log.Info("quarantine nemesis: unquarantine", "vid", q.target, "answer", err)
	}
	done(history.Op{Type: history.OK})
	q.commit(ctx, q.target) // the volume takes commits again
	q.awaitFlushed(ctx, history.FQuarantineResume, q.target)
	return nil
}

// flushedLSN returns vid's flushed watermark in the bucket: the last LSN
// of its last log record (0 without one); each call bounded by 5s.
func (q *quarantine) flushedLSN(ctx context.Context, vid volume.ID) (volume.LSN, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	store := q.env.Store
	objs, err := store.List(ctx, segment.LogPrefix(vid))
	if err != nil {
		return 0, err
	}
	if len(objs) == 0 {
		return 0, nil
	}
	key := objs[len(objs)-1].Key
	b, err := store.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	rec, err := segment.DecodeRecord(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return rec.To, nil
}
