package edge

import (
	"context"
	_ "embed"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/internal/statuspage"
)

//go:embed status_page.html
var statusPageBody string

var statusPage = statuspage.New("edge", statusPageBody)

type statusData struct {
	statuspage.Frame
	Upstream      []string
	StatusFrom    string
	StatusErr     string
	Leader        string
	Members       []statusMember
	PagesCache    uint64
	PagesUpstream uint64
	PagesBucket   uint64
	PagesTotal    uint64
	HitRatio      float64
	UpstreamBytes uint64
	BucketBytes   uint64
	BucketErrors  uint64
	CacheBytes    uint64
	CacheMax      uint64
	CacheEntries  int
	Evictions     uint64
	Disk, Bucket  bool
	WatchStreams  uint64
	WatchSubs     uint64
	Reads         statuspage.Minute
}

type statusMember struct {
	ID, State, Suffrage, API, Err string
	Term, Applied, Commit         uint64
	Leader                        bool
}

// serveStatus serves the HTML status page (GET /): the cluster's leader
// and members as the first upstream that answers reports them, the cache's
// hit ratio, pages by source, size, and the last minute of ReadPages. It
// needs no token and shows nothing secret (no object-store URL).
func (e *Edge) serveStatus(w http.ResponseWriter, r *http.Request) {
	m := e.metrics
	d := statusData{
		Frame:         statuspage.NewFrame(r, "graft edge", "serving "+e.cfg.Listen),
		Upstream:      e.up.Endpoints(),
		PagesCache:    uint64(value(m.pages.WithLabelValues(sourceCache))),
		PagesUpstream: uint64(value(m.pages.WithLabelValues(sourceUpstream))),
		PagesBucket:   uint64(value(m.pages.WithLabelValues(sourceBucket))),
		UpstreamBytes: uint64(value(m.upstreamBytes)),
		BucketBytes:   uint64(value(m.bucketBytes)),
		BucketErrors:  uint64(value(m.bucketErrors)),
		CacheBytes:    uint64(e.pages.WeightedSize() + e.meta.WeightedSize()),
		CacheMax:      uint64(e.cfg.CacheBytes),
		CacheEntries:  e.pages.EstimatedSize() + e.meta.EstimatedSize(),
		Evictions:     uint64(value(m.evictions)),
		Disk:          e.disk != nil,
		Bucket:        e.bucket != nil,
		WatchStreams:  uint64(value(m.watchStreams)),
		WatchSubs:     uint64(value(m.watchSubs)),
		Reads:         m.reads.Minute(),
	}
	d.PagesTotal = d.PagesCache + d.PagesUpstream + d.PagesBucket
	if d.PagesTotal > 0 {
		d.HitRatio = float64(d.PagesCache) / float64(d.PagesTotal)
	}
	var errs []string
	for i, ep := range e.up.Endpoints() {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		resp, err := e.up.Cluster(i).Status(ctx, connect.NewRequest(&graftv1.StatusRequest{}))
		cancel()
		if err != nil {
			errs = append(errs, ep+": "+err.Error())
			continue
		}
		d.StatusFrom, d.Leader = ep, resp.Msg.GetLeaderId()
		for _, n := range resp.Msg.GetNodes() {
			errText, _, _ := strings.Cut(n.GetError(), "\n")
			d.Members = append(d.Members, statusMember{
				ID: n.GetId(), State: n.GetState(), Suffrage: n.GetSuffrage(), API: n.GetApiAddr(), Err: errText,
				Term: n.GetTerm(), Applied: n.GetAppliedIndex(), Commit: n.GetCommitIndex(), Leader: n.GetId() == d.Leader && d.Leader != "",
			})
		}
		break
	}
	if d.StatusFrom == "" {
		d.StatusFrom = "(none answered)"
		d.StatusErr = "no upstream answered: " + strings.Join(errs, "; ")
	}
	if err := statuspage.Render(w, statusPage, d); err != nil {
		e.log.Warn("status page", "err", err)
	}
}

// value reads a counter's or gauge's current value.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		return 0
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	return 0
}
