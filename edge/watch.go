package edge

import (
	"context"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/volume"
)

// watchHub is the one upstream WatchVolume stream of a volume and its
// subscribers. Its fields are guarded by Edge.watchMu.
type watchHub struct {
	vid     volume.ID
	head    *graftv1.Snapshot // newest head seen; nil before the first
	err     error             // set when the upstream stream failed for good
	changed chan struct{}     // closed (and replaced) at each change
	subs    int
	cancel  context.CancelFunc
}

// subscribe returns the volume's hub, starting it if needed. A hub started
// here carries the credential of reqCtx's caller upstream unless the edge
// has a token of its own (Config.UpstreamToken).
func (e *Edge) subscribe(reqCtx context.Context, vid volume.ID) *watchHub {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	h := e.watches[vid]
	if h == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		if e.cfg.UpstreamToken == "" {
			ctx = auth.WithCredential(ctx, auth.Credential(reqCtx))
		}
		h = &watchHub{vid: vid, changed: make(chan struct{}), cancel: cancel}
		e.watches[vid] = h
		e.wg.Add(1)
		go e.runHub(ctx, h)
	}
	h.subs++
	e.metrics.watchSubs.Inc()
	return h
}

func (e *Edge) unsubscribe(h *watchHub) {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	h.subs--
	e.metrics.watchSubs.Dec()
	if h.subs == 0 {
		h.cancel()
		if e.watches[h.vid] == h {
			delete(e.watches, h.vid)
		}
	}
}

// runHub keeps one upstream stream open, moving to the next endpoint when
// one fails, and publishes every head it reports. After WatchRetries
// failures in a row with no message it gives its subscribers the error.
func (e *Edge) runHub(ctx context.Context, h *watchHub) {
	defer e.wg.Done()
	e.metrics.watchStreams.Inc()
	defer e.metrics.watchStreams.Dec()
	eps := len(e.up.Endpoints())
	failures, i := 0, int(h.vid[len(h.vid)-1])%eps // spread the volumes over the nodes
	backoff := 20 * time.Millisecond
	for {
		var since uint64
		e.watchMu.Lock()
		if h.head != nil {
			since = h.head.GetLsn()
		}
		e.watchMu.Unlock()
		stream, err := e.up.Volume(i).WatchVolume(ctx, connect.NewRequest(&graftv1.WatchVolumeRequest{Vid: h.vid.String(), SinceLsn: since}))
		if err == nil {
			for stream.Receive() {
				failures, backoff = 0, 20*time.Millisecond
				e.publish(h, stream.Msg().GetSnapshot(), nil)
			}
			err = stream.Err()
			_ = stream.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = connect.NewError(connect.CodeUnavailable, errUpstreamStreamEnded)
		}
		failures++
		code := connect.CodeOf(err)
		if failures >= e.cfg.WatchRetries || code == connect.CodeInvalidArgument || code == connect.CodeFailedPrecondition {
			e.publish(h, nil, upstreamErr(err))
			return
		}
		i = (i + 1) % eps
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

var errUpstreamStreamEnded = errStr("edge: the upstream watch stream ended")

type errStr string

func (e errStr) Error() string { return string(e) }

// publish records a new head (only ever forward) or the hub's final error.
func (e *Edge) publish(h *watchHub, s *graftv1.Snapshot, err error) {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	if err != nil {
		h.err = err
		if e.watches[h.vid] == h {
			delete(e.watches, h.vid) // the next subscriber starts afresh
		}
	} else {
		if s == nil || (h.head != nil && s.GetLsn() <= h.head.GetLsn()) {
			return
		}
		h.head = s
		if snap, err := snapshotFrom(s); err == nil && snap.VID == h.vid {
			e.rememberSnapshot(snap)
		}
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

// WatchVolume streams the volume's head from the volume's hub: the current
// head at once (once the hub knows it), then each newer head past
// max(since_lsn, the last head sent).
func (s *service) WatchVolume(ctx context.Context, req *connect.Request[graftv1.WatchVolumeRequest], stream *connect.ServerStream[graftv1.WatchVolumeResponse]) error {
	const method = "WatchVolume"
	err := s.watch(ctx, req, stream)
	s.e.metrics.requests.WithLabelValues(method, codeLabel(err)).Inc()
	return err
}

func (s *service) watch(ctx context.Context, req *connect.Request[graftv1.WatchVolumeRequest], stream *connect.ServerStream[graftv1.WatchVolumeResponse]) error {
	vid, err := parseVID(req.Msg.GetVid())
	if err != nil {
		return err
	}
	e := s.e
	h := e.subscribe(ctx, vid)
	defer e.unsubscribe(h)
	first := true
	last := req.Msg.GetSinceLsn()
	for {
		e.watchMu.Lock()
		head, herr, changed := h.head, h.err, h.changed
		e.watchMu.Unlock()
		if head != nil && (first || head.GetLsn() > last) {
			if err := stream.Send(&graftv1.WatchVolumeResponse{Snapshot: head}); err != nil {
				return err
			}
			first = false
			last = max(last, head.GetLsn())
			continue
		}
		if herr != nil {
			return herr
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-e.ctx.Done():
			return connect.NewError(connect.CodeUnavailable, errStr("edge: shutting down; watch another edge"))
		}
	}
}
