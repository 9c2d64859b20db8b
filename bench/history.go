package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

// HistoryConfig configures RunHistory: one volume, many commits over many
// flush rounds, then cold reads.
type HistoryConfig struct {
	// Commits is the number of commits. Default 20000.
	Commits int
	// Rounds is the number of flush rounds they are spread over (one log
	// record each). Default 2000.
	Rounds int
	// Pages is the number of distinct pages commits overwrite (one page per
	// commit, chosen at random). Default 1000.
	Pages int
	// CheckpointRecords is the checkpoint trigger of the "checkpoints" run.
	// Default 64.
	CheckpointRecords int
	// Latency is added to every object-store request of the measured
	// reads (an S3 round trip; the store is in memory). Default 5ms;
	// negative: none.
	Latency time.Duration
	// Seed seeds the page choice. Default 1.
	Seed uint64
	// RetainLSNs, when positive, adds a third run with checkpoints and
	// --retain-lsns RetainLSNs, GC after every round (no grace): its bucket
	// size against the live data shows what retention reclaims. Default 0.
	RetainLSNs uint64
}

func (c *HistoryConfig) defaults() error {
	if c.Commits == 0 {
		c.Commits = 20000
	}
	if c.Rounds == 0 {
		c.Rounds = 2000
	}
	if c.Pages == 0 {
		c.Pages = 1000
	}
	if c.CheckpointRecords == 0 {
		c.CheckpointRecords = 64
	}
	switch {
	case c.Latency == 0:
		c.Latency = 5 * time.Millisecond
	case c.Latency < 0:
		c.Latency = 0 // none
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Commits < 1 || c.Rounds < 1 || c.Rounds > c.Commits || c.Pages < 1 || c.CheckpointRecords < 1 {
		return fmt.Errorf("%w: history bench needs 1 <= rounds <= commits, positive pages and checkpoint records", ErrInvalidArgument)
	}
	return nil
}

// ReadCost is what one measured read took.
type ReadCost struct {
	LSN      volume.LSN
	Requests Counts
	Took     time.Duration
}

// HistoryResult is one run of RunHistory.
type HistoryResult struct {
	// Mode is "no-checkpoints" (the layout before checkpoints),
	// "checkpoints" (without deltas), "deltas" (checkpoints and deltas), or
	// "retention" (checkpoints, deltas and GC).
	Mode        string
	Commits     int
	Rounds      int
	Records     int // log records written
	Checkpoints int // checkpoints committed
	// StateFroms is the length of the volume's history in the Raft state.
	StateFroms int
	// SnapshotBytes is the size of the FSM snapshot (everything flushed).
	SnapshotBytes int
	// Build is the time the commits and flushes took (not a read cost).
	Build time.Duration
	// Head and Old are cold clusterless reads (graft volume read
	// --object-store) of one page at the head and at an old LSN.
	Head, Old ReadCost
	// Restart is a restarted node: restore the FSM snapshot, then read one
	// page at the head with a cold page cache through the cluster's path.
	Restart ReadCost
	// BucketBytes is the size of every object of the volume at the end;
	// LiveBytes the page bytes of its head snapshot.
	BucketBytes, LiveBytes int64
	// Deleted counts the objects GC deleted.
	Deleted int
}

// RunHistory runs the long-history benchmark twice on in-memory stores,
// without and with checkpoints, and checks every page it reads.
func RunHistory(ctx context.Context, cfg HistoryConfig) ([]HistoryResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	var out []HistoryResult
	for _, run := range []struct {
		ckpt   int
		deltas bool
	}{{0, false}, {cfg.CheckpointRecords, false}, {cfg.CheckpointRecords, true}} {
		r, err := runHistory(ctx, cfg, run.ckpt, 0, run.deltas)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if cfg.RetainLSNs > 0 {
		r, err := runHistory(ctx, cfg, cfg.CheckpointRecords, cfg.RetainLSNs, true)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func historyPage(idx volume.PageIdx, lsn volume.LSN) []byte {
	p := make([]byte, volume.PageSize)
	for i := 0; i < len(p); i += 16 {
		binary.BigEndian.PutUint64(p[i:], uint64(lsn))
		binary.BigEndian.PutUint64(p[i+8:], uint64(idx))
	}
	return p
}

type memSink struct {
	bytes.Buffer
}

func (s *memSink) ID() string    { return "bench" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

func runHistory(ctx context.Context, cfg HistoryConfig, ckptRecords int, retain uint64, deltas bool) (HistoryResult, error) {
	res := HistoryResult{Mode: "no-checkpoints", Commits: cfg.Commits, Rounds: cfg.Rounds}
	switch {
	case retain > 0:
		res.Mode = "retention"
	case ckptRecords > 0 && deltas:
		res.Mode = "deltas"
	case ckptRecords > 0:
		res.Mode = "checkpoints"
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs := &CountingStore{Store: objstore.NewMemory()}
	f := fsm.New()
	lg := fsm.NewLocalLog(f)
	reader, err := flusher.NewReader(cs, flusher.ReaderConfig{Logger: quiet})
	if err != nil {
		return res, err
	}
	fc := flusher.DefaultConfig()
	fc.Interval, fc.OrphanInterval = 0, 0
	fc.CheckpointRecords, fc.CheckpointBytes = ckptRecords, 0
	fc.RetainLSNs, fc.GCInterval, fc.GCGrace = retain, 0, 0
	fc.CheckpointDeltas = deltas
	fl, err := flusher.New(fc, f, cs, reader, lg, quiet, nil)
	if err != nil {
		return res, err
	}
	vid := volume.MustNewID()
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	// version[idx] is the LSN of each page's newest version; oldVersion is
	// its copy at the old LSN read later.
	version := map[volume.PageIdx]volume.LSN{}
	oldLSN := volume.LSN(max(1, cfg.Commits/10))
	var oldVersion map[volume.PageIdx]volume.LSN
	start := time.Now()
	lsn := volume.LSN(0)
	for round := range cfg.Rounds {
		n := cfg.Commits/cfg.Rounds + btoi(round < cfg.Commits%cfg.Rounds)
		for range n {
			idx := volume.PageIdx(1 + rng.IntN(cfg.Pages))
			pages := []volume.PageWrite{{Idx: idx, Data: historyPage(idx, lsn+1)}}
			hash := volume.CommitHash(vid, lsn+1, uint32(cfg.Pages), pages)
			resp, _ := lg.Propose(ctx, fsm.EncodeCommit(&fsm.CommitCommand{VID: vid, BaseLSN: lsn, PageCount: uint32(cfg.Pages), TimeUnixMs: time.Now().UnixMilli(), Hash: hash, Pages: pages}))
			if cr, ok := resp.(*fsm.CommitResult); !ok || cr.Err != nil {
				return res, fmt.Errorf("commit %d: %v", lsn+1, resp)
			}
			lsn++
			version[idx] = lsn
			if lsn == oldLSN {
				oldVersion = make(map[volume.PageIdx]volume.LSN, len(version))
				for k, v := range version {
					oldVersion[k] = v
				}
			}
		}
		if _, err := fl.FlushOnce(ctx, true); err != nil {
			return res, fmt.Errorf("flush round %d: %w", round, err)
		}
		n, err := fl.CheckpointOnce(ctx)
		if err != nil {
			return res, fmt.Errorf("checkpoint after round %d: %w", round, err)
		}
		res.Checkpoints += n
		if retain > 0 {
			d, err := fl.GCOnce(ctx)
			if err != nil {
				return res, fmt.Errorf("gc after round %d: %w", round, err)
			}
			res.Deleted += d
		}
	}
	res.Build = time.Since(start)
	objs, err := cs.Store.List(ctx, "")
	if err != nil {
		return res, err
	}
	for _, o := range objs {
		res.BucketBytes += o.Size
	}
	res.LiveBytes = int64(len(version)) * volume.PageSize
	res.Records = cfg.Rounds
	h := f.History(vid)
	res.StateFroms = len(h.Froms)
	if h.Flushed != lsn {
		return res, fmt.Errorf("flushed %d of %d commits", h.Flushed, lsn)
	}

	// The pages to read: the head read's page was last written long ago
	// when possible (the worst case for a reader walking records).
	headIdx := volume.PageIdx(1)
	for idx, v := range version {
		if v < version[headIdx] {
			headIdx = idx
		}
	}
	oldIdx := volume.PageIdx(1)
	for idx := range oldVersion {
		oldIdx = idx
		break
	}

	if retain > 0 && uint64(oldLSN)+retain < uint64(lsn) {
		// Below the horizon the old read is out_of_range: skip it.
		oldLSN = 0
	}
	cs.Latency = cfg.Latency
	measure := func(lsn volume.LSN, idx volume.PageIdx, want volume.LSN, read func(r *flusher.Reader) ([]fsm.PageVersion, error)) (ReadCost, error) {
		r, err := flusher.NewReader(cs, flusher.ReaderConfig{Logger: quiet})
		if err != nil {
			return ReadCost{}, err
		}
		cs.Reset()
		t := time.Now()
		pages, err := read(r)
		c := ReadCost{LSN: lsn, Took: time.Since(t), Requests: cs.Counts()}
		if err != nil {
			return c, fmt.Errorf("%s read at %d: %w", res.Mode, lsn, err)
		}
		if len(pages) != 1 || pages[0].LSN != want || (want != 0 && !bytes.Equal(pages[0].Data, historyPage(idx, want))) {
			return c, fmt.Errorf("%s read of page %d at %d: got version %d, want %d", res.Mode, idx, lsn, pages[0].LSN, want)
		}
		return c, nil
	}
	if res.Head, err = measure(lsn, headIdx, version[headIdx], func(r *flusher.Reader) ([]fsm.PageVersion, error) {
		_, p, err := r.ReadSnapshot(ctx, vid, 0, []volume.PageIdx{headIdx})
		return p, err
	}); err != nil {
		return res, err
	}
	if oldLSN > 0 {
		if res.Old, err = measure(oldLSN, oldIdx, oldVersion[oldIdx], func(r *flusher.Reader) ([]fsm.PageVersion, error) {
			_, p, err := r.ReadSnapshot(ctx, vid, oldLSN, []volume.PageIdx{oldIdx})
			return p, err
		}); err != nil {
			return res, err
		}
	}
	// A restarted node: its FSM comes back from the Raft snapshot, its
	// reader is cold.
	snap, err := f.Snapshot()
	if err != nil {
		return res, err
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		return res, err
	}
	res.SnapshotBytes = sink.Len()
	data := sink.Bytes()
	if res.Restart, err = measure(lsn, headIdx, version[headIdx], func(r *flusher.Reader) ([]fsm.PageVersion, error) {
		g := fsm.New()
		if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			return nil, err
		}
		return r.ReadPages(ctx, g.History(vid), lsn, []volume.PageIdx{headIdx})
	}); err != nil {
		return res, err
	}
	return res, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
