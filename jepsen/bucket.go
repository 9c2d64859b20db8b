package jepsen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

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
}

// readBucket reads every volume's log records and checks the segments they
// name, from the object store alone, as a stateless reader would. Unlike
// flusher.Reader.History it does not stop at a gap in the log: the gap is
// the finding (a flush that trimmed the buffer without writing its record).
//
// An object-store failure is returned as a *flusher.StoreError (the store
// did not answer: finalReadError makes it unreadable), unless it is
// objstore.ErrNotFound for a listed record (the data is gone). The chains
// hold only the volumes read in full.
func readBucket(ctx context.Context, url string, vids []volume.ID) (bucketState, error) {
	out := bucketState{chains: map[string][]checker.Entry{}}
	store, err := objstore.Open(ctx, url)
	if err != nil {
		return out, &flusher.StoreError{Op: "open object store", Err: err}
	}
	defer store.Close()
	r, err := flusher.NewReader(store, flusher.DefaultReaderConfig())
	if err != nil {
		return out, err
	}
	for _, vid := range vids {
		objs, err := store.List(ctx, segment.LogPrefix(vid))
		if err != nil {
			return out, &flusher.StoreError{Op: "list log of " + vid.String(), Err: err}
		}
		var chain []checker.Entry
		for _, o := range objs {
			_, from, err := segment.ParseLogKey(o.Key)
			if err != nil {
				return out, fmt.Errorf("log of %s: %w", vid, err)
			}
			rec, err := r.Record(ctx, vid, from)
			if err != nil {
				return out, err
			}
			for _, c := range rec.Commits {
				chain = append(chain, checker.Entry{LSN: uint64(c.LSN), Hash: c.Hash.String()})
			}
			miss, err := checkSegment(ctx, store, rec)
			if err != nil {
				return out, err
			}
			out.missing = append(out.missing, miss...)
		}
		if len(chain) > 0 {
			out.chains[vid.String()] = chain
		}
	}
	return out, nil
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
// gap-free run of LSNs from 1.
func bucketGaps(chains map[string][]checker.Entry) []string {
	var out []string
	for _, vid := range slices.Sorted(maps.Keys(chains)) {
		for j, e := range chains[vid] {
			if e.LSN != uint64(j)+1 {
				out = append(out, fmt.Sprintf("vid %s: bucket log is not a gap-free prefix: record %d has lsn %d, want %d", vid, j, e.LSN, j+1))
				break
			}
		}
	}
	return out
}
