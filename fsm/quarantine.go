package fsm

import (
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/volume"
)

// Quarantine stops one volume's flushing after the object store was found
// to hold a log record of it that the cluster cannot reconcile: a record
// with other commit hashes than the cluster's (another writer on the
// prefix), a record that does not decode, or records the state does not
// know (the bucket is ahead of the state). It is decided through the Raft
// log, so every replica agrees. While quarantined, a volume is left out of
// flush plans and its commits are refused with a *QuarantineError naming
// the object; reads of what the state holds still work. A volume
// quarantined by recovery, before its head was known, has no state: its
// reads fail too. Unquarantine (an operator's decision) lifts it.
type Quarantine struct {
	VID volume.ID
	// Key is the object-store key of the offending object.
	Key string
	// Reason says what is wrong with it.
	Reason string
	// Index is the Raft index of the entry that quarantined the volume.
	// Set by Apply; ignored in a proposal.
	Index uint64
}

// QuarantineError is the rejection of a commit to (or a read of an unknown
// head of) a quarantined volume.
type QuarantineError struct {
	Quarantine
}

func (e *QuarantineError) Error() string {
	return fmt.Sprintf("fsm: volume %s is quarantined: object %s: %s", e.VID, e.Key, e.Reason)
}

// Unwrap lets errors.Is(err, ErrQuarantined) match.
func (e *QuarantineError) Unwrap() error { return ErrQuarantined }

// applyQuarantine quarantines a volume and takes it out of the open round,
// which closes when no volume is left in it. A volume already quarantined
// keeps its first reason.
func (s *state) applyQuarantine(q *Quarantine, index uint64) *AdminResult {
	if _, ok := s.quarantine[q.VID]; ok {
		return &AdminResult{}
	}
	cp := *q
	cp.Index = index
	s.quarantine[q.VID] = cp
	if s.plan != nil {
		i := slices.IndexFunc(s.plan.Volumes, func(pv PlanVolume) bool { return pv.VID == q.VID })
		if i >= 0 {
			// Replace, never modify: a snapshot may hold the old plan.
			np := *s.plan
			np.Volumes = slices.Delete(slices.Clone(s.plan.Volumes), i, i+1)
			s.plan = &np
			if len(np.Volumes) == 0 {
				s.plan = nil
			}
		}
	}
	return &AdminResult{}
}

func (s *state) applyUnquarantine(vid volume.ID) *AdminResult {
	if _, ok := s.quarantine[vid]; !ok {
		return &AdminResult{Err: fmt.Errorf("%w: volume %s is not quarantined", ErrFlushRejected, vid)}
	}
	delete(s.quarantine, vid)
	return &AdminResult{}
}

// applyIdentity sets the cluster's identity once; setting the same one
// again is a no-op, another one is rejected.
func (s *state) applyIdentity(id string) *AdminResult {
	switch s.clusterID {
	case "":
		s.clusterID = id
		return &AdminResult{}
	case id:
		return &AdminResult{}
	}
	return &AdminResult{Err: fmt.Errorf("%w: cluster id is %q, not %q", ErrFlushRejected, s.clusterID, id)}
}

// Quarantine returns the volume's quarantine, if it is quarantined.
func (f *FSM) Quarantine(vid volume.ID) (Quarantine, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	q, ok := f.st.quarantine[vid]
	return q, ok
}

// Quarantined returns every quarantined volume, sorted by VID.
func (f *FSM) Quarantined() []Quarantine {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.quarantined()
}

func (s *state) quarantined() []Quarantine {
	out := make([]Quarantine, 0, len(s.quarantine))
	for _, q := range s.quarantine {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b Quarantine) int { return compareVID(a.VID, b.VID) })
	return out
}

// HasVolume reports whether the state holds the volume (a head, possibly
// with history); false for a volume never committed to and for one
// quarantined before its head was known.
func (f *FSM) HasVolume(vid volume.ID) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.volumes[vid] != nil
}

// ClusterID returns the cluster's identity in its object store, or "".
func (f *FSM) ClusterID() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.clusterID
}
