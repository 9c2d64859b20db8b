package flusher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type flushMetrics struct {
	rounds         prometheus.Counter
	volumes        prometheus.Counter
	commits        prometheus.Counter
	bytes          prometheus.Counter
	errors         prometheus.Counter
	conflicts      prometheus.Counter
	quarantines    prometheus.Counter
	orphans        prometheus.Counter
	checkpoints    prometheus.Counter
	gcDeleted      prometheus.Counter
	compactions    prometheus.Counter
	compacted      prometheus.Counter
	checkpointGens prometheus.Counter
	seconds        prometheus.Histogram
	puts           *prometheus.CounterVec
	putErrors      *prometheus.CounterVec
	putTime        *prometheus.HistogramVec
}

func newFlushMetrics(reg prometheus.Registerer) *flushMetrics {
	m := &flushMetrics{
		rounds:         prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_rounds_total", Help: "Flush rounds completed by this node as leader."}),
		volumes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_volumes_total", Help: "Volume ranges flushed (one segment and one log record each at most)."}),
		commits:        prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_commits_total", Help: "Commits flushed to the object store by this node as leader."}),
		bytes:          prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_bytes_total", Help: "Bytes written to the object store by flush rounds."}),
		errors:         prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_errors_total", Help: "Flush round attempts that failed and will be retried."}),
		conflicts:      prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_conflicts_total", Help: "Log records found in the object store with other commits than ours (an alarm)."}),
		quarantines:    prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_quarantines_total", Help: "Volumes this node, as leader, quarantined because their log in the object store conflicts with the cluster's state (see graft_quarantined_volumes)."}),
		orphans:        prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_flush_orphans_deleted_total", Help: "Orphan segments collected."}),
		checkpoints:    prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_checkpoints_written_total", Help: "Volume checkpoints written and committed by this node as leader."}),
		gcDeleted:      prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_gc_deleted_objects_total", Help: "Objects (log records, segments, checkpoints) deleted by retention GC."}),
		compactions:    prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_compactions_total", Help: "Compacted segments written (and named by a committed checkpoint) by this node as leader."}),
		compacted:      prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_compacted_pages_total", Help: "Live page versions moved into compacted segments by this node as leader."}),
		checkpointGens: prometheus.NewCounter(prometheus.CounterOpts{Name: "graft_checkpoint_generations_total", Help: "Retained checkpoints written again (a new generation) by compaction on this node as leader, pointing at compacted segments."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "graft_flush_round_seconds", Help: "Duration of completed flush rounds.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		puts:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "graft_objstore_puts_total", Help: "Object-store PUTs by the flusher, by kind (segment, log)."}, []string{"kind"}),
		putErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "graft_objstore_put_errors_total", Help: "Failed object-store PUTs by the flusher, by kind (ErrExists on a log record is not counted)."}, []string{"kind"}),
		putTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "graft_objstore_put_seconds", Help: "Object-store PUT latency, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.rounds, m.volumes, m.commits, m.bytes, m.errors, m.conflicts, m.quarantines, m.orphans, m.checkpoints, m.gcDeleted, m.compactions, m.compacted, m.checkpointGens, m.seconds, m.puts, m.putErrors, m.putTime)
	}
	return m
}

func (m *flushMetrics) observePut(kind string, start time.Time, err error) {
	m.puts.WithLabelValues(kind).Inc()
	m.putTime.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if err != nil && !isExists(err) {
		m.putErrors.WithLabelValues(kind).Inc()
	}
}
