package objstore

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// s3Metrics counts what the S3 backend's deadlines and hedging do. The op
// label is the Store operation: get, get_range, head, put, put_if_absent,
// list, delete.
type s3Metrics struct {
	timeouts  *prometheus.CounterVec // op, kind (first_byte, attempt)
	retries   *prometheus.CounterVec // op
	hedges    *prometheus.CounterVec // op
	hedgeWins *prometheus.CounterVec // op
}

func newS3Metrics(reg prometheus.Registerer) (*s3Metrics, error) {
	m := &s3Metrics{
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_objstore_timeouts_total",
			Help: "S3 attempts cancelled at their deadline, by operation and kind (first_byte: no response byte in time; attempt: the whole attempt ran past its size-aware deadline).",
		}, []string{"op", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_objstore_retries_total",
			Help: "S3 attempts after the first of a call (timeouts, 5xx, throttling, connection errors), by operation.",
		}, []string{"op"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_objstore_hedges_total",
			Help: "Hedged S3 GETs: second requests sent because the first had no response byte after the hedge delay, by operation.",
		}, []string{"op"}),
		hedgeWins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graft_objstore_hedge_wins_total",
			Help: "Hedged S3 GETs whose second request answered first, by operation.",
		}, []string{"op"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.timeouts, &m.retries, &m.hedges, &m.hedgeWins} {
		if err := reg.Register(*c); err != nil {
			// Another store on the same registry: share its counters.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, err
			}
			*c = existing
		}
	}
	return m, nil
}
