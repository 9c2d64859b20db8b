package checker

import (
	"errors"
	"fmt"
)

// Bucket checks the object store after a final flush: for every volume,
// the bucket's log (bucket[vid], as read by a stateless reader) is a
// gap-free prefix 1..k of the cluster's chain (chains[vid], say Chain's
// reference node) with identical hashes, and holds no volume the cluster
// does not. With requireFull, k below the chain's head is an anomaly too
// (a final flush should have written everything).
func Bucket(chains map[string][]Entry, bucket map[string][]Entry, requireFull bool) Result {
	var an anomalies
	stats := checkBucket(&an, chains, bucket, nil, requireFull)
	return an.result("bucket", Valid, stats)
}

// checkBucket adds Bucket's anomalies to an and returns its stats. starts
// (nil: every log starts at 1) is, per volume, the LSN the bucket's log
// must start at: one past the checkpoint it continues (a cluster with
// retention deletes the records it folded into a checkpoint). Entries
// below the chain's first LSN (the chain starts at the cluster's horizon)
// cannot be compared and are not.
func checkBucket(an *anomalies, chains map[string][]Entry, bucket map[string][]Entry, starts map[string]uint64, requireFull bool) map[string]any {
	var flushed, lagging int
	vids := map[string]bool{}
	for vid := range chains {
		vids[vid] = true
	}
	for vid := range bucket {
		vids[vid] = true
	}
	for _, vid := range sortedKeys(vids) {
		chain, inCluster := chains[vid]
		log := bucket[vid]
		if !inCluster && len(log) > 0 {
			an.addf("vid %s: the bucket holds %d log records of a volume the cluster does not have", vid, len(log))
			continue
		}
		want := map[uint64]string{}
		var head uint64
		low := uint64(1)
		for j, e := range chain {
			want[e.LSN] = e.Hash
			head = max(head, e.LSN)
			if j == 0 {
				low = e.LSN
			}
		}
		start := max(1, starts[vid])
		k := start - 1
		for j, e := range log {
			if e.LSN != start+uint64(j) {
				an.addf("vid %s: bucket log is not a gap-free prefix: record %d has lsn %d, want %d", vid, j, e.LSN, start+uint64(j))
				break
			}
			h, ok := want[e.LSN]
			if !ok && e.LSN < low {
				k = e.LSN
				continue
			}
			if !ok {
				an.addf("vid %s lsn %d: bucket has hash %s beyond the chain's head %d", vid, e.LSN, short(e.Hash), head)
				break
			}
			if h != e.Hash {
				an.addf("vid %s lsn %d: bucket has hash %s, the chain %s", vid, e.LSN, short(e.Hash), short(h))
			}
			k = e.LSN
		}
		flushed += int(k - (start - 1))
		if k < head {
			lagging++
			if requireFull {
				an.addf("vid %s: bucket holds lsn %d..%d after the final flush, the chain's head is %d", vid, start, k, head)
			}
		}
	}
	return map[string]any{
		"volumes":         len(vids),
		"flushed_commits": flushed,
		"lagging_volumes": lagging,
		"require_full":    requireFull,
	}
}

// FinalBucket checks the bucket at the end of a run: bucket is what a
// stateless reader read from it after the final flush, chains the
// cluster's chains (Chain's reference node; nil when no node could be
// read). flushErr and readErr are the final flush's and the bucket read's
// errors. An error that wraps ErrUnreadable says nothing about the data
// (the store or the cluster did not answer in time): the verdict is then
// at best Unknown. Any other error is an answer about the data and an
// anomaly: the bucket read found an object missing (not found, a gap
// before the flushed LSNs) or broken (corrupt, layout violated), or the
// flush was refused for what the bucket holds (data_loss).
//
// A flush that failed to be made leaves the bucket to be checked as a
// prefix only; a flush that succeeded requires the whole chain.
func FinalBucket(chains, bucket map[string][]Entry, flushErr, readErr error) Result {
	return FinalBucketFrom(chains, bucket, nil, flushErr, readErr)
}

// FinalBucketFrom is FinalBucket for a cluster with retention: starts[vid]
// is the LSN the volume's log in the bucket must start at (see
// checkBucket); nil is FinalBucket.
func FinalBucketFrom(chains, bucket map[string][]Entry, starts map[string]uint64, flushErr, readErr error) Result {
	var an anomalies
	var unknown []string
	for _, e := range []struct {
		what string
		err  error
	}{{"final flush", flushErr}, {"read bucket", readErr}} {
		switch {
		case e.err == nil:
		case errors.Is(e.err, ErrUnreadable):
			unknown = append(unknown, fmt.Sprintf("%s: %v", e.what, e.err))
		default:
			an.addf("%s: the data is gone or broken: %v", e.what, e.err)
		}
	}
	stats := map[string]any{}
	switch {
	case readErr != nil:
	case chains == nil:
		unknown = append(unknown, "no node's chain to compare the bucket with")
	default:
		stats = checkBucket(&an, chains, bucket, starts, flushErr == nil)
	}
	fallback := Valid
	if len(unknown) > 0 {
		fallback = Unknown
		stats["unknown_because"] = unknown
	}
	return an.result("bucket", fallback, stats)
}
