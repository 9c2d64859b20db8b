package jepsen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// bucketState is what a stateless reader finds in the object store.
type bucketState struct {
	// chains are the commits of every volume's log records, in LSN order,
	// with no attempt to bridge a gap (checker.Bucket reports gaps).
	chains map[string][]checker.Entry
	// missing lists the page data the log records name and the bucket does
	// not hold: a segment that is absent or lacks a page version.
	missing []string
	// starts is, with retention, the LSN each volume's log starts at: one
	// past the checkpoint it continues (GC deleted the records before).
	starts map[string]uint64
	// deltas counts the deltas checked against the chain (checkDeltas).
	deltas int
	// gens counts the checkpoint generations checked (checkGenerations).
	gens int
}

// Retention runs: how often and how long apart readBucket reads a volume
// again when what it found may be a GC round half done (tests shorten it).
var gcReread = struct {
	n    int
	wait time.Duration
}{6, 3 * time.Second}

// readBucket reads every volume's log records and checks the segments they
// name, from the object store alone, as a stateless reader would. Unlike
// flusher.Reader.History it does not stop at a gap in the log: the gap is
// the finding (a flush that trimmed the buffer without writing its record).
//
// With retention (the gc nemesis) a volume's log may start above 1: then
// the checkpoint just before its first record must be in the bucket and
// every segment it names too (a retained snapshot reads from it). GC may
// be deleting while this reads (segments, then records, then checkpoints),
// so the volumes whose read finds something missing are read again, in up
// to gcReread.n passes gcReread.wait apart (15 s in all, inside the final
// read's budget), and only what is still missing at the last read is
// reported: a half-done round finishes within a grace
// period, a segment deleted too early stays missing.
//
// An object-store failure is returned as a *flusher.StoreError (the store
// did not answer: finalReadError makes it unreadable), unless it is
// objstore.ErrNotFound for a listed record (the data is gone). The chains
// hold only the volumes read in full.
func readBucket(ctx context.Context, url string, vids []volume.ID, retention bool) (bucketState, error) {
	out := bucketState{chains: map[string][]checker.Entry{}}
	if retention {
		out.starts = map[string]uint64{}
	}
	store, err := objstore.Open(ctx, url)
	if err != nil {
		return out, &flusher.StoreError{Op: "open object store", Err: err}
	}
	defer store.Close()
	pending := vids
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 1 && !sleepCtx(ctx, gcReread.wait) {
			return out, &flusher.StoreError{Op: "read bucket", Err: ctx.Err()}
		}
		// A fresh reader each pass: its caches must not hide a deletion.
		// Its own log stays quiet: what it finds is reported as anomalies.
		rc := flusher.DefaultReaderConfig()
		rc.Logger = slog.New(slog.DiscardHandler)
		r, err := flusher.NewReader(store, rc)
		if err != nil {
			return out, err
		}
		var again []volume.ID
		for _, vid := range pending {
			v, err := readVolume(ctx, store, r, vid, retention)
			if err != nil {
				return out, err
			}
			if retention && len(v.missing) > 0 && attempt < gcReread.n {
				again = append(again, vid)
				continue
			}
			if len(v.chain) > 0 {
				out.chains[vid.String()] = v.chain
			}
			out.missing = append(out.missing, v.missing...)
			out.deltas += v.deltas
			out.gens += v.gens
			if retention {
				out.starts[vid.String()] = v.start
			}
		}
		pending = again
	}
	return out, nil
}

// volumeRead is one read of a volume's log in the bucket.
type volumeRead struct {
	chain   []checker.Entry
	missing []string
	start   uint64
	deltas  int // deltas checked
	gens    int // rewritten checkpoint generations checked
}

// readVolume reads vid's log records and checks their segments; with
// retention also the checkpoint its log continues, and a record listed
// and then gone is reported missing (readBucket reads again) rather than
// returned as an error.
func readVolume(ctx context.Context, store objstore.Store, r *flusher.Reader, vid volume.ID, retention bool) (volumeRead, error) {
	v := volumeRead{start: 1}
	var recs []*segment.Record // for checkDeltas
	objs, err := store.List(ctx, segment.LogPrefix(vid))
	if err != nil {
		return v, &flusher.StoreError{Op: "list log of " + vid.String(), Err: err}
	}
	for j, o := range objs {
		_, from, err := segment.ParseLogKey(o.Key)
		if err != nil {
			return v, fmt.Errorf("log of %s: %w", vid, err)
		}
		if j == 0 && retention && from > 1 {
			v.start = uint64(from)
			miss, err := checkCheckpoint(ctx, store, r, vid, from-1)
			if err != nil {
				return v, err
			}
			v.missing = append(v.missing, miss...)
		}
		rec, err := r.Record(ctx, vid, from)
		if retention && errors.Is(err, objstore.ErrNotFound) {
			v.missing = append(v.missing, fmt.Sprintf("vid %s: log record from %d listed, then not found", vid, from))
			continue
		}
		if err != nil {
			return v, err
		}
		recs = append(recs, rec)
		for _, c := range rec.Commits {
			v.chain = append(v.chain, checker.Entry{LSN: uint64(c.LSN), Hash: c.Hash.String()})
		}
		miss, err := checkSegment(ctx, store, rec)
		if err != nil {
			return v, err
		}
		v.missing = append(v.missing, miss...)
	}
	// Every delta left must describe its snapshot as the chain says.
	miss, n, err := checkDeltas(ctx, store, vid, recs)
	if err != nil {
		return v, err
	}
	v.missing = append(v.missing, miss...)
	v.deltas = n
	if retention {
		// Every checkpoint's newest generation locates its versions, and
		// rewritten ones describe the same snapshot in every generation.
		miss, n, err := checkGenerations(ctx, store, vid)
		if err != nil {
			return v, err
		}
		v.missing = append(v.missing, miss...)
		v.gens = n
	}
	if retention && len(objs) == 0 {
		// Every record folded into a checkpoint: the newest one starts it.
		cks, err := store.List(ctx, segment.CheckpointPrefix(vid))
		if err != nil {
			return v, &flusher.StoreError{Op: "list checkpoints of " + vid.String(), Err: err}
		}
		if len(cks) > 0 {
			_, lsn, err := segment.ParseCheckpointKey(cks[0].Key)
			if err != nil {
				return v, fmt.Errorf("checkpoints of %s: %w", vid, err)
			}
			v.start = uint64(lsn) + 1
			miss, err := checkCheckpoint(ctx, store, r, vid, lsn)
			if err != nil {
				return v, err
			}
			v.missing = append(v.missing, miss...)
		}
	}
	return v, nil
}

// checkCheckpoint checks that vid's checkpoint at lsn is in the bucket and
// decodes, and that every segment it names is there and holds the page
// versions it names; it returns what is missing.
func checkCheckpoint(ctx context.Context, store objstore.Store, r *flusher.Reader, vid volume.ID, lsn volume.LSN) ([]string, error) {
	ck, err := r.Checkpoint(ctx, vid, lsn)
	var se *flusher.StoreError
	if errors.As(err, &se) && !errors.Is(err, objstore.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return []string{fmt.Sprintf("vid %s: the log starts at lsn %d and the checkpoint at %d is not usable: %v", vid, lsn+1, lsn, err)}, nil
	}
	var out []string
	for ord, id := range ck.Segments {
		where := fmt.Sprintf("vid %s: checkpoint %d names segment %s", vid, lsn, id)
		b, err := store.Get(ctx, segment.SegmentKey(vid, id))
		if errors.Is(err, objstore.ErrNotFound) {
			out = append(out, where+", which is not in the bucket: the pages of retained snapshots are lost")
			continue
		}
		if err != nil {
			return nil, &flusher.StoreError{Op: fmt.Sprintf("get segment %s of %s", id, vid), Err: err}
		}
		_, ix, err := segment.Decode(b)
		if err != nil {
			out = append(out, fmt.Sprintf("%s, which does not decode: %v", where, err))
			continue
		}
		have := map[[2]uint64]bool{}
		for _, e := range ix.All() {
			have[[2]uint64{uint64(e.Idx), uint64(e.LSN)}] = true
		}
		for _, p := range ck.Pages {
			if int(p.Segment) == ord && !have[[2]uint64{uint64(p.Idx), uint64(p.LSN)}] {
				out = append(out, fmt.Sprintf("%s, which lacks page %d at lsn %d", where, p.Idx, p.LSN))
			}
		}
	}
	return out, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkSegment checks that the segment rec names exists and holds every
// page version rec's commits wrote; it returns what is missing.
func checkSegment(ctx context.Context, store objstore.Store, rec *segment.Record) ([]string, error) {
	if rec.Segment.IsZero() {
		return nil, nil
	}
	where := fmt.Sprintf("vid %s: log record [%d, %d] names segment %s", rec.VID, rec.From, rec.To, rec.Segment)
	b, err := store.Get(ctx, segment.SegmentKey(rec.VID, rec.Segment))
	if errors.Is(err, objstore.ErrNotFound) {
		return []string{where + ", which is not in the bucket: the pages of those commits are lost"}, nil
	}
	if err != nil {
		return nil, &flusher.StoreError{Op: fmt.Sprintf("get segment %s of %s", rec.Segment, rec.VID), Err: err}
	}
	_, ix, err := segment.Decode(b)
	if err != nil {
		return []string{fmt.Sprintf("%s, which does not decode: %v", where, err)}, nil
	}
	have := map[[2]uint64]bool{}
	for _, e := range ix.All() {
		have[[2]uint64{uint64(e.Idx), uint64(e.LSN)}] = true
	}
	var out []string
	for _, c := range rec.Commits {
		for idx := range c.Graft.All() {
			if !have[[2]uint64{uint64(idx), uint64(c.LSN)}] {
				out = append(out, fmt.Sprintf("%s, which lacks page %d at lsn %d", where, idx, c.LSN))
			}
		}
	}
	return out, nil
}

// withAnomalies adds anomalies found outside a checker to its result,
// which is then invalid.
func withAnomalies(r checker.Result, anomalies []string) checker.Result {
	if len(anomalies) == 0 {
		return r
	}
	r.Valid = checker.Invalid
	r.Anomalies = append(r.Anomalies, anomalies...)
	if r.Stats == nil {
		r.Stats = map[string]any{}
	}
	r.Stats["anomalies_outside_checker"] = len(anomalies)
	return r
}

// bucketGaps reports every volume whose log in the bucket is not a
// gap-free run of LSNs from 1 (from starts[vid], when starts has it).
func bucketGaps(chains map[string][]checker.Entry, starts map[string]uint64) []string {
	var out []string
	for _, vid := range slices.Sorted(maps.Keys(chains)) {
		start := max(1, starts[vid])
		for j, e := range chains[vid] {
			if e.LSN != start+uint64(j) {
				out = append(out, fmt.Sprintf("vid %s: bucket log is not a gap-free prefix: record %d has lsn %d, want %d", vid, j, e.LSN, start+uint64(j)))
				break
			}
		}
	}
	return out
}
