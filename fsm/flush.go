package fsm

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/graft-cluster/graft/volume"
)

// FlushPlan is one flush round: for each volume, the contiguous LSN range
// that goes into one segment and one log record. The leader proposes it;
// Apply accepts it only if no other round is open and every range starts
// right after the volume's flushed watermark and ends at or below its head.
// The round stays open until a FlushDone for it is applied, so a new leader
// finds it in the state and finishes exactly this plan.
type FlushPlan struct {
	// Round identifies the plan: the Raft index of the entry that opened it.
	// Set by Apply; ignored in a proposal.
	Round uint64
	// TimeUnixMs is the proposing leader's clock, in Unix milliseconds.
	TimeUnixMs int64
	// Volumes are the planned ranges, one per volume, sorted by VID.
	Volumes []PlanVolume
}

// PlanVolume is one volume's part of a flush round.
type PlanVolume struct {
	VID      volume.ID
	From, To volume.LSN
	// Segment is the ID of the segment object holding the range's pages
	// (segment.ID's bytes); all zero when no commit in the range wrote a
	// page.
	Segment [16]byte
}

// History locates a volume's flushed commits in the object store: the
// newest checkpoint (at LSN Checkpoint, 0: none) describes the snapshot at
// Checkpoint, and log record i covers LSNs [Froms[i], Froms[i+1]-1], the
// last one up to Flushed; Froms[0] == Checkpoint+1 when both exist. LSNs at
// or below Checkpoint are read from the bucket's older checkpoints and
// records (flusher.Reader finds them). Froms is shared with the state and
// must not be modified.
type History struct {
	VID volume.ID
	// Horizon is the oldest readable LSN (0: everything): reads below it
	// answer ErrRetention (CheckRetained).
	Horizon    volume.LSN
	Checkpoint volume.LSN
	Froms      []volume.LSN
	Flushed    volume.LSN
}

// Locate returns the index of the record after the checkpoint holding lsn,
// or false.
func (h History) Locate(lsn volume.LSN) (int, bool) {
	if lsn == 0 || lsn > h.Flushed || len(h.Froms) == 0 || lsn < h.Froms[0] {
		return 0, false
	}
	i := sort.Search(len(h.Froms), func(i int) bool { return h.Froms[i] > lsn })
	return i - 1, true
}

// Range returns record i's LSN range.
func (h History) Range(i int) (from, to volume.LSN) {
	from, to = h.Froms[i], h.Flushed
	if i+1 < len(h.Froms) {
		to = h.Froms[i+1] - 1
	}
	return from, to
}

// FlushCandidate is a volume with buffered commits not yet flushed.
type FlushCandidate struct {
	VID volume.ID
	// Flushed is the highest LSN durable in the object store (0: none).
	Flushed volume.LSN
	// Head is the volume's head LSN.
	Head volume.LSN
	// Bytes are the volume's buffered page bytes.
	Bytes uint64
	// OldestUnixMs is the commit time of the oldest unflushed commit.
	OldestUnixMs int64
}

// BufferedCommit is a buffered commit with its pages, for the flusher.
type BufferedCommit struct {
	CommitInfo
	// Pages are sorted by index; the bytes are shared and immutable.
	Pages []volume.PageWrite
}

// AdminResult is the response of Apply for flush and recovery entries.
type AdminResult struct {
	// Round is the round a FlushPlan opened.
	Round uint64
	// Err is nil when the entry took effect; otherwise it wraps
	// ErrFlushRejected or ErrInvalidCommand, and the entry changed nothing.
	Err error
}

func (s *state) applyPlan(p *FlushPlan, index uint64) *AdminResult {
	if s.plan != nil {
		return &AdminResult{Err: fmt.Errorf("%w: round %d is still open", ErrFlushRejected, s.plan.Round)}
	}
	if len(p.Volumes) == 0 {
		return &AdminResult{Err: fmt.Errorf("%w: plan has no volumes", ErrFlushRejected)}
	}
	for i, pv := range p.Volumes {
		if i > 0 && string(p.Volumes[i-1].VID[:]) >= string(pv.VID[:]) {
			return &AdminResult{Err: fmt.Errorf("%w: volumes not sorted or repeated at %s", ErrFlushRejected, pv.VID)}
		}
		v := s.volumes[pv.VID]
		if v == nil {
			return &AdminResult{Err: fmt.Errorf("%w: volume %s has no commits", ErrFlushRejected, pv.VID)}
		}
		if _, ok := s.quarantine[pv.VID]; ok {
			return &AdminResult{Err: fmt.Errorf("%w: volume %s is quarantined", ErrFlushRejected, pv.VID)}
		}
		if pv.From != v.first || pv.To < pv.From || pv.To > v.head.LSN {
			return &AdminResult{Err: fmt.Errorf("%w: volume %s range [%d, %d], buffer holds [%d, %d]",
				ErrFlushRejected, pv.VID, pv.From, pv.To, v.first, v.head.LSN)}
		}
	}
	cp := *p
	cp.Round = index
	cp.Volumes = slices.Clone(p.Volumes)
	s.plan = &cp
	return &AdminResult{Round: index}
}

// applyDone closes the open round: the planned ranges are durable in the
// object store, so they join the volumes' histories and leave the buffer.
func (s *state) applyDone(round uint64) *AdminResult {
	if s.plan == nil || s.plan.Round != round {
		open := uint64(0)
		if s.plan != nil {
			open = s.plan.Round
		}
		return &AdminResult{Err: fmt.Errorf("%w: round %d is not open (open: %d)", ErrFlushRejected, round, open)}
	}
	for _, pv := range s.plan.Volumes {
		s.trim(s.volumes[pv.VID], pv.From, pv.To)
	}
	s.plan = nil
	return &AdminResult{Round: round}
}

// trim drops the buffered commits [from, to] (from == v.first) and records
// them as flushed. Slices are replaced, never modified, so snapshots and
// readers holding the old ones stay valid.
func (s *state) trim(v *volState, from, to volume.LSN) {
	n := int(to - from + 1)
	gone := v.commits[:n]
	v.commits = slices.Clone(v.commits[n:])
	var freed uint64
	touched := map[volume.PageIdx]bool{}
	for _, c := range gone {
		freed += uint64(len(c.pages)) * volume.PageSize
		for _, pg := range c.pages {
			touched[pg.Idx] = true
		}
	}
	for idx := range touched {
		vers := v.pages[idx]
		j := sort.Search(len(vers), func(j int) bool { return vers[j].lsn > to })
		if j == len(vers) {
			delete(v.pages, idx)
		} else {
			v.pages[idx] = slices.Clone(vers[j:])
		}
	}
	v.bufferBytes -= freed
	v.sinceBytes += freed
	s.bufferBytes -= freed
	v.first = to + 1
	v.froms = append(v.froms[:len(v.froms):len(v.froms)], from)
}

// applyAdopt installs a volume found in the object store by recovery: its
// head and flushed history, with an empty buffer. After recovery it is
// valid only for a volume quarantined before its head was known (the
// operator repaired its log and lifts the quarantine).
func (s *state) applyAdopt(a *AdoptCommand) *AdminResult {
	if _, q := s.quarantine[a.Head.VID]; s.recovered && !q {
		return &AdminResult{Err: fmt.Errorf("%w: recovery already finished", ErrFlushRejected)}
	}
	if s.volumes[a.Head.VID] != nil {
		return &AdminResult{Err: fmt.Errorf("%w: volume %s already exists", ErrFlushRejected, a.Head.VID)}
	}
	s.volumes[a.Head.VID] = &volState{
		head:       a.Head,
		first:      a.Head.LSN + 1,
		froms:      slices.Clone(a.Froms),
		checkpoint: a.Checkpoint,
		pages:      map[volume.PageIdx][]pageVersion{},
	}
	return &AdminResult{}
}

// Recovered reports whether the cluster has finished adopting the volumes
// of its object store (or had none to adopt). Commits must wait for it.
func (f *FSM) Recovered() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.recovered
}

// WaitRecovered blocks until recovery is done or ctx ends.
func (f *FSM) WaitRecovered(ctx context.Context) error {
	return f.wait(ctx, func(s *state) bool { return s.recovered })
}

// Plan returns a copy of the open flush round, or nil.
func (f *FSM) Plan() *FlushPlan {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.st.plan == nil {
		return nil
	}
	cp := *f.st.plan
	cp.Volumes = slices.Clone(cp.Volumes)
	return &cp
}

// History returns the volume's flushed history.
func (f *FSM) History(vid volume.ID) History {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.history(vid)
}

func (s *state) history(vid volume.ID) History {
	v := s.volumes[vid]
	if v == nil {
		return History{VID: vid}
	}
	return History{VID: vid, Horizon: v.horizon, Checkpoint: v.checkpoint, Froms: v.froms[:len(v.froms):len(v.froms)], Flushed: v.first - 1}
}

// FlushCandidates returns the volumes with unflushed commits, sorted by VID;
// quarantined volumes are left out.
func (f *FSM) FlushCandidates() []FlushCandidate {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []FlushCandidate
	for vid, v := range f.st.volumes {
		if _, q := f.st.quarantine[vid]; len(v.commits) == 0 || q {
			continue
		}
		out = append(out, FlushCandidate{
			VID: vid, Flushed: v.first - 1, Head: v.head.LSN,
			Bytes: v.bufferBytes, OldestUnixMs: v.commits[0].timeUnixMs,
		})
	}
	slices.SortFunc(out, func(a, b FlushCandidate) int { return compareVID(a.VID, b.VID) })
	return out
}

func compareVID(a, b volume.ID) int {
	switch {
	case string(a[:]) < string(b[:]):
		return -1
	case string(a[:]) > string(b[:]):
		return 1
	}
	return 0
}

// Buffered returns the buffered commits [from, to] with their pages, or
// ErrNotBuffered if any of them is not in the buffer.
func (f *FSM) Buffered(vid volume.ID, from, to volume.LSN) ([]BufferedCommit, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v := f.st.volumes[vid]
	if v == nil || from < v.first || to > v.head.LSN || to < from {
		return nil, fmt.Errorf("%w: volume %s range [%d, %d]", ErrNotBuffered, vid, from, to)
	}
	out := make([]BufferedCommit, 0, to-from+1)
	for lsn := from; lsn <= to; lsn++ {
		rec := v.commit(lsn)
		out = append(out, BufferedCommit{CommitInfo: rec.info(), Pages: rec.pages})
	}
	return out, nil
}

func (c *commitRec) info() CommitInfo {
	return CommitInfo{LSN: c.lsn, PageCount: c.pageCount, Hash: c.hash, TimeUnixMs: c.timeUnixMs, Graft: c.graft}
}
