package cluster

import (
	"cmp"
	"context"
	_ "embed"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/internal/statuspage"
)

//go:embed status_page.html
var statusPageBody string

var statusPage = statuspage.New("node", statusPageBody)

// statusBusiest is how many volumes the status page lists by buffered
// bytes.
const statusBusiest = 5

type statusData struct {
	statuspage.Frame
	ID, State, Leader     string
	Term, Applied, Commit uint64
	LastLog               uint64
	BufferBytes           uint64
	FlushLag              time.Duration
	Store, StoreErr       string
	Members               []statusMember
	MembersErr            string
	Commits               statuspage.Minute
	Volumes               int
	Unflushed             []statusVolume
	Busiest               []statusVolume
	Quarantined           []statusQuarantine
}

type statusMember struct {
	ID, State, Suffrage, API, Raft, Err string
	Term, Applied, Commit, LastLog      uint64
	Leader, Self                        bool
}

type statusVolume struct {
	VID           string
	Head, Flushed uint64
	Bytes         uint64
}

type statusQuarantine struct{ VID, Key, Reason string }

// serveStatus serves the HTML status page (GET /): this node's Raft state,
// every member's as the members report it (ClusterService.Status), the
// buffer, flush lag, volumes, quarantines and the last minute of commits.
// It needs no token and shows nothing secret (no object-store URL).
func (n *Node) serveStatus(w http.ResponseWriter, r *http.Request) {
	d := statusData{
		Frame:       statuspage.NewFrame(r, "graft node "+n.cfg.ID, "api "+n.apiAddr+" · raft "+n.raftAddr),
		ID:          n.cfg.ID,
		State:       strings.ToLower(n.raft.State().String()),
		Leader:      n.Leader(),
		Term:        n.raft.CurrentTerm(),
		Applied:     n.fsm.Applied(),
		Commit:      n.raft.CommitIndex(),
		LastLog:     n.raft.LastIndex(),
		BufferBytes: n.fsm.BufferBytes(),
		Volumes:     n.fsm.Volumes(),
		Commits:     n.metrics.commits.Minute(),
	}
	if id := n.fsm.ClusterID(); id != "" {
		d.Subtitle = "cluster " + id + " · " + d.Subtitle
	}
	switch {
	case n.objects == nil:
		d.Store = "none configured (nothing is flushed)"
	case n.storeError() != nil:
		d.StoreErr = n.storeError().Error()
	case d.State == "leader":
		d.Store = "in use by this leader"
	default:
		d.Store = "configured (the leader flushes; followers read flushed history)"
	}
	cands := n.fsm.FlushCandidates()
	d.FlushLag = flushLag(cands).Round(time.Millisecond)
	for _, c := range cands {
		d.Unflushed = append(d.Unflushed, statusVolume{VID: c.VID.String(), Head: uint64(c.Head), Flushed: uint64(c.Flushed), Bytes: c.Bytes})
	}
	d.Busiest = slices.Clone(d.Unflushed)
	slices.SortStableFunc(d.Busiest, func(a, b statusVolume) int { return cmp.Compare(b.Bytes, a.Bytes) })
	d.Busiest = d.Busiest[:min(len(d.Busiest), statusBusiest)]

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	resp, err := (&clusterService{n: n}).Status(ctx, connect.NewRequest(&graftv1.StatusRequest{}))
	if err != nil {
		d.MembersErr = "members: " + err.Error()
	} else {
		for _, m := range resp.Msg.GetNodes() {
			d.Members = append(d.Members, statusMember{
				ID: m.GetId(), State: m.GetState(), Suffrage: m.GetSuffrage(), API: m.GetApiAddr(), Raft: m.GetRaftAddr(),
				Err: firstLine(m.GetError()), Term: m.GetTerm(), Applied: m.GetAppliedIndex(), Commit: m.GetCommitIndex(),
				LastLog: m.GetLastLogIndex(), Leader: m.GetId() == d.Leader && d.Leader != "", Self: m.GetId() == n.cfg.ID,
			})
		}
		for _, q := range resp.Msg.GetQuarantined() {
			d.Quarantined = append(d.Quarantined, statusQuarantine{VID: q.GetVid(), Key: q.GetKey(), Reason: q.GetReason()})
		}
	}
	if err := statuspage.Render(w, statusPage, d); err != nil {
		n.log.Warn("status page", "err", err)
	}
}

// firstLine returns s up to its first newline, at most 200 bytes.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}
