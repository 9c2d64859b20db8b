package edge

import (
	"context"
	"errors"
	"path"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/graft-cluster/graft/internal/statuspage"
)

// Page sources, the values of the source label.
const (
	sourceCache    = "cache"
	sourceUpstream = "upstream"
	sourceBucket   = "bucket"
)

type metrics struct {
	requests      *prometheus.CounterVec // method, code
	pages         *prometheus.CounterVec // source
	upstreamBytes prometheus.Counter
	bucketBytes   prometheus.Counter
	bucketErrors  prometheus.Counter
	joins         prometheus.Counter
	ranges        *prometheus.CounterVec // method, source: PullGraft/PullCommits answers by where they came from
	graftResolved prometheus.Counter
	evictions     prometheus.Counter
	watchStreams  prometheus.Gauge
	watchSubs     prometheus.Gauge
	// reads counts ReadPages requests per second for the status page's
	// last minute (rate, p50/p99, sparklines).
	reads *statuspage.Ring
}

func newMetrics(reg *prometheus.Registry, e *Edge) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_edge_requests_total", Help: "VolumeService requests served by the edge, by method and Connect code (ok for success).",
		}, []string{"method", "code"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_edge_pages_total", Help: "Pages served by ReadPages, by where they came from.",
		}, []string{"source"}),
		upstreamBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_edge_upstream_page_bytes_total", Help: "Page bytes fetched from the cluster.",
		}),
		bucketBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_edge_bucket_page_bytes_total", Help: "Page bytes read from the object store.",
		}),
		bucketErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_edge_bucket_errors_total", Help: "Object-store reads that failed (and fell back to the cluster).",
		}),
		joins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_edge_singleflight_joins_total", Help: "Cache misses answered by another request's load in flight instead of a fetch of their own.",
		}),
		ranges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_edge_ranges_total", Help: "Grafts and commit metadata of fixed LSN ranges answered, by method and where they came from (cache or upstream).",
		}, []string{"method", "source"}),
		graftResolved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_edge_graft_resolutions_total", Help: "Page versions resolved from an older snapshot's resolution and the graft between, without reading the page.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graft_edge_cache_evictions_total", Help: "Cache entries evicted for size.",
		}),
		watchStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "graft_edge_watch_upstream_streams", Help: "Upstream WatchVolume streams open (one per watched volume).",
		}),
		watchSubs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "graft_edge_watch_subscribers", Help: "Client WatchVolume streams served.",
		}),
		reads: statuspage.NewRing(nil),
	}
	for _, s := range []string{sourceCache, sourceUpstream, sourceBucket} {
		m.pages.WithLabelValues(s)
	}
	reg.MustRegister(m.requests, m.pages, m.upstreamBytes, m.bucketBytes, m.bucketErrors, m.joins, m.ranges, m.graftResolved, m.evictions, m.watchStreams, m.watchSubs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "graft_edge_cache_bytes", Help: "Weighted size of the cache (page bytes plus per-entry overhead).",
		}, func() float64 {
			return float64(e.pages.WeightedSize() + e.meta.WeightedSize() + e.ranges.WeightedSize())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "graft_edge_cache_entries", Help: "Entries in the cache (page versions, resolutions and snapshots).",
		}, func() float64 {
			return float64(e.pages.EstimatedSize() + e.meta.EstimatedSize() + e.ranges.EstimatedSize())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "graft_edge_cache_max_bytes", Help: "The cache's byte bound (--cache-bytes).",
		}, func() float64 { return float64(e.cfg.CacheBytes) }),
	)
	return m
}

// codeLabel is the code label of a request's outcome.
func codeLabel(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code().String()
	}
	return connect.CodeOf(err).String()
}

// interceptor counts unary requests by method and code.
func (m *metrics) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			method := path.Base(req.Spec().Procedure)
			m.requests.WithLabelValues(method, codeLabel(err)).Inc()
			if method == "ReadPages" {
				m.reads.Observe(time.Since(start), err == nil)
			}
			return resp, err
		}
	}
}
