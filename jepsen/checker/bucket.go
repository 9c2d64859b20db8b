package checker

// Bucket checks the object store after a final flush: for every volume,
// the bucket's log (bucket[vid], as read by a stateless reader) is a
// gap-free prefix 1..k of the cluster's chain (chains[vid], say Chain's
// reference node) with identical hashes, and holds no volume the cluster
// does not. With requireFull, k below the chain's head is an anomaly too
// (a final flush should have written everything).
func Bucket(chains map[string][]Entry, bucket map[string][]Entry, requireFull bool) Result {
	var an anomalies
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
		for _, e := range chain {
			want[e.LSN] = e.Hash
			head = max(head, e.LSN)
		}
		var k uint64
		for j, e := range log {
			if e.LSN != uint64(j)+1 {
				an.addf("vid %s: bucket log is not a gap-free prefix: record %d has lsn %d, want %d", vid, j, e.LSN, j+1)
				break
			}
			h, ok := want[e.LSN]
			if !ok {
				an.addf("vid %s lsn %d: bucket has hash %s beyond the chain's head %d", vid, e.LSN, short(e.Hash), head)
				break
			}
			if h != e.Hash {
				an.addf("vid %s lsn %d: bucket has hash %s, the chain %s", vid, e.LSN, short(e.Hash), short(h))
			}
			k = e.LSN
		}
		flushed += int(k)
		if k < head {
			lagging++
			if requireFull {
				an.addf("vid %s: bucket holds lsn 1..%d after the final flush, the chain's head is %d", vid, k, head)
			}
		}
	}
	return an.result("bucket", Valid, map[string]any{
		"volumes":         len(vids),
		"flushed_commits": flushed,
		"lagging_volumes": lagging,
		"require_full":    requireFull,
	})
}
