package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/internal/statuspage"
)

type metrics struct {
	commitSeconds *prometheus.HistogramVec
	applyBatch    prometheus.Histogram
	commitBatch   prometheus.Histogram
	forwarded     prometheus.Counter
	leaderChanges prometheus.Counter
	historyPages  prometheus.Counter
	// commits counts this node's Commit RPCs per second for the status
	// page's last minute (rate, p50/p99, sparklines).
	commits *statuspage.Ring
}

func newMetrics(reg *prometheus.Registry, n *Node) *metrics {
	m := &metrics{
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "graft_commit_duration_seconds",
			Help:    "Commit RPC latency on the node that received it, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"outcome"}),
		applyBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "graft_fsm_apply_batch_entries",
			Help:    "Log entries per FSM ApplyBatch call (group commit size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "graft_commit_batch_commits",
			Help:    "Commits per Raft entry the leader proposed (commit batching).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_forwarded_requests_total",
			Help: "Requests this node forwarded to the leader.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_raft_leadership_changes_total",
			Help: "Times this node gained or lost leadership.",
		}),
		historyPages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_read_flushed_pages_total",
			Help: "Pages read served from flushed history (object store or its cache) rather than the buffer.",
		}),
		commits: statuspage.NewRing(nil),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		m.commitSeconds, m.applyBatch, m.commitBatch, m.forwarded, m.leaderChanges, m.historyPages,
		gauge("graft_flush_lag_seconds", "Age of the oldest commit not yet flushed to the object store (0 when none).", func() float64 {
			return flushLag(n.fsm.FlushCandidates()).Seconds()
		}),
		gauge("graft_buffer_bytes", "Page bytes buffered in the FSM, not yet flushed.", func() float64 { return float64(n.fsm.BufferBytes()) }),
		gauge("graft_volumes", "Volumes with at least one commit.", func() float64 { return float64(n.fsm.Volumes()) }),
		gauge("graft_quarantined_volumes", "Volumes quarantined because their log in the object store conflicts with the cluster's state: not flushed, commits refused (graft cluster status lists them).", func() float64 {
			return float64(len(n.fsm.Quarantined()))
		}),
		gauge("graft_object_store_fenced", "1 while this node, as leader, refuses the object store because its identity object names another cluster.", func() float64 {
			if errors.Is(n.storeError(), flusher.ErrForeignBucket) {
				return 1
			}
			return 0
		}),
		gauge("graft_raft_applied_index", "Last Raft index applied to the FSM.", func() float64 { return float64(n.fsm.Applied()) }),
		gauge("graft_raft_commit_index", "Raft commit index.", func() float64 {
			if n.raft == nil {
				return 0
			}
			return float64(n.raft.CommitIndex())
		}),
		gauge("graft_raft_term", "Raft current term.", func() float64 {
			if n.raft == nil {
				return 0
			}
			return float64(n.raft.CurrentTerm())
		}),
		gauge("graft_raft_state", "Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown.", func() float64 {
			if n.raft == nil {
				return 3
			}
			return float64(n.raft.State())
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if h := n.cfg.TLS; h != nil {
		// Connections are reused: this grows with connections (Raft pool,
		// forwarding, clients), never with calls.
		for _, side := range []string{"server", "client"} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "graft_tls_handshakes_total",
				Help:        "TLS handshakes completed by this process's TLS material, as server (API and Raft listeners) and client (Raft dials, forwarding).",
				ConstLabels: prometheus.Labels{"side": side},
			}, func() float64 {
				s, c := h.Handshakes()
				if side == "server" {
					return float64(s)
				}
				return float64(c)
			}))
		}
	}
	return m
}

func (m *metrics) observeCommit(outcome string, d time.Duration) {
	m.commitSeconds.WithLabelValues(outcome).Observe(d.Seconds())
	m.commits.Observe(d, outcome == outcomeOK || outcome == outcomeForwarded || outcome == outcomeDuplicate)
}

// flushLag is the age of the oldest unflushed commit among cands, 0 when
// there is none.
func flushLag(cands []fsm.FlushCandidate) time.Duration {
	oldest := int64(0)
	for _, c := range cands {
		if oldest == 0 || c.OldestUnixMs < oldest {
			oldest = c.OldestUnixMs
		}
	}
	if oldest == 0 {
		return 0
	}
	return max(0, time.Since(time.UnixMilli(oldest)))
}

// meteredFSM records group-commit batch sizes around the FSM.
type meteredFSM struct {
	*fsm.FSM
	n *Node
}

func (f *meteredFSM) ApplyBatch(logs []*raft.Log) []any {
	runHook(f.n.hook().beforeApply)
	f.n.metrics.applyBatch.Observe(float64(len(logs)))
	f.n.noteApplied(logs)
	return f.FSM.ApplyBatch(logs)
}

// Snapshot restarts the count of log bytes since the last snapshot.
func (f *meteredFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.n.logBytes.Store(0)
	return f.FSM.Snapshot()
}
