package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/volume"
)

// ErrVolumeDeleted means the volume was deleted (DeleteVolume): its commits
// and reads are refused for good.
var ErrVolumeDeleted = errors.New("fsm: volume deleted")

// Tombstone records a deleted volume (entry kind 16).
type Tombstone struct {
	VID volume.ID
	// Index is the Raft index of the entry that deleted it (set by Apply).
	Index uint64
	// TimeUnixMs is the deleting leader's clock; GC removes the volume's
	// objects a grace period after it.
	TimeUnixMs int64
	// Purged is set once GC removed every object of the volume.
	Purged bool
}

// EncodeTombstone encodes the deletion of t.VID (Purged false), or the end
// of its object removal (Purged true). Index is ignored.
func EncodeTombstone(t Tombstone) []byte {
	b := append([]byte{cmdMagic, cmdVersion, kindTombstone}, t.VID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.TimeUnixMs))
	if t.Purged {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeTombstone(body []byte) (*Tombstone, error) {
	if len(body) != 25 || body[24] > 1 {
		return nil, fmt.Errorf("%w: tombstone: %d bytes, want 25 with a 0/1 flag", ErrInvalidCommand, len(body))
	}
	vid, err := volume.IDFromBytes(body[:16])
	if err != nil {
		return nil, fmt.Errorf("%w: tombstone: %w", ErrInvalidCommand, err)
	}
	return &Tombstone{VID: vid, TimeUnixMs: int64(binary.BigEndian.Uint64(body[16:])), Purged: body[24] == 1}, nil
}

// applyTombstone deletes a volume: its buffer is dropped, it leaves the
// open flush and GC rounds and the quarantine, and its commits and reads
// answer ErrVolumeDeleted from now on. A purge entry marks the objects
// removed. Deleting twice is a no-op.
func (s *state) applyTombstone(t *Tombstone, index uint64) *AdminResult {
	old, deleted := s.deleted[t.VID]
	if t.Purged {
		if !deleted {
			return &AdminResult{Err: fmt.Errorf("%w: purge of volume %s, which is not deleted", ErrFlushRejected, t.VID)}
		}
		old.Purged = true
		s.deleted[t.VID] = old
		return &AdminResult{}
	}
	if deleted {
		return &AdminResult{}
	}
	if v := s.volumes[t.VID]; v != nil {
		s.bufferBytes -= v.bufferBytes
		delete(s.volumes, t.VID)
	}
	delete(s.quarantine, t.VID)
	// Replace, never modify: a snapshot may hold the old rounds.
	if s.plan != nil {
		if i := slices.IndexFunc(s.plan.Volumes, func(pv PlanVolume) bool { return pv.VID == t.VID }); i >= 0 {
			np := *s.plan
			np.Volumes = slices.Delete(slices.Clone(s.plan.Volumes), i, i+1)
			s.plan = &np
			if len(np.Volumes) == 0 {
				s.plan = nil
			}
		}
	}
	if s.gc != nil {
		if i := slices.IndexFunc(s.gc.Volumes, func(gv GCVolume) bool { return gv.VID == t.VID }); i >= 0 {
			np := *s.gc
			np.Volumes = slices.Delete(slices.Clone(s.gc.Volumes), i, i+1)
			s.gc = &np
			if len(np.Volumes) == 0 {
				s.gc = nil
			}
		}
	}
	s.deleted[t.VID] = Tombstone{VID: t.VID, Index: index, TimeUnixMs: t.TimeUnixMs}
	return &AdminResult{}
}

// Deleted returns the volume's tombstone, if it was deleted.
func (f *FSM) Deleted(vid volume.ID) (Tombstone, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.st.deleted[vid]
	return t, ok
}

// Unpurged returns the deleted volumes whose objects GC has not removed
// yet, sorted by VID.
func (f *FSM) Unpurged() []Tombstone {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []Tombstone
	for _, t := range f.st.deleted {
		if !t.Purged {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Tombstone) int { return compareVID(a.VID, b.VID) })
	return out
}

func (s *state) tombstones() []Tombstone {
	out := make([]Tombstone, 0, len(s.deleted))
	for _, t := range s.deleted {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Tombstone) int { return compareVID(a.VID, b.VID) })
	return out
}
