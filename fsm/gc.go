package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/volume"
)

// ErrRetention means a read asked for a snapshot older than the volume's
// retained history. Errors carrying it are *RetentionError.
var ErrRetention = errors.New("fsm: lsn older than the retained history")

// RetentionError is a read below a volume's horizon.
type RetentionError struct {
	VID volume.ID
	LSN volume.LSN
	// Oldest is the oldest readable LSN (the horizon).
	Oldest volume.LSN
}

func (e *RetentionError) Error() string {
	return fmt.Sprintf("%v: lsn %d of %s; the oldest readable lsn is %d", ErrRetention, e.LSN, e.VID, e.Oldest)
}

// Unwrap lets errors.Is(err, ErrRetention) match.
func (e *RetentionError) Unwrap() error { return ErrRetention }

// CheckRetained returns a *RetentionError if lsn (0: the head) is below
// h's horizon.
func (h History) CheckRetained(lsn volume.LSN) error {
	if lsn != 0 && lsn < h.Horizon {
		return &RetentionError{VID: h.VID, LSN: lsn, Oldest: h.Horizon}
	}
	return nil
}

// GCPlan is one garbage-collection round, decided by the leader and
// committed through Raft (entry kind 14) so that every replica agrees on
// each volume's horizon before anything is deleted. Committing it moves the
// horizons at once (reads below answer ErrRetention); the leader deletes
// the objects below each volume's base only after a grace period, then
// commits GCDone (kind 15).
type GCPlan struct {
	// Round is the Raft index of the entry that opened it (set by Apply).
	Round uint64
	// TimeUnixMs is the proposing leader's clock.
	TimeUnixMs int64
	// Volumes are sorted by VID.
	Volumes []GCVolume
}

// GCVolume is one volume's part of a GC round.
type GCVolume struct {
	VID volume.ID
	// Horizon is the oldest readable LSN from now on.
	Horizon volume.LSN
	// Base is the checkpoint at or below Horizon that retained snapshots
	// start from (0: none): checkpoints older than it, and log records
	// and segments only snapshots before it need, are deleted.
	Base volume.LSN
}

const gcVolumeLen = 16 + 8 + 8

// EncodeGCPlan encodes a GC round proposal (Round is ignored).
func EncodeGCPlan(p *GCPlan) []byte {
	b := []byte{cmdMagic, cmdVersion, kindGCPlan}
	b = binary.BigEndian.AppendUint64(b, uint64(p.TimeUnixMs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Volumes)))
	for _, v := range p.Volumes {
		b = append(b, v.VID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Horizon))
		b = binary.BigEndian.AppendUint64(b, uint64(v.Base))
	}
	return b
}

// EncodeGCDone encodes the end of GC round round.
func EncodeGCDone(round uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{cmdMagic, cmdVersion, kindGCDone}, round)
}

func decodeGCPlan(p []byte) (*GCPlan, error) {
	if len(p) < 12 {
		return nil, fmt.Errorf("%w: gc plan is %d bytes", ErrInvalidCommand, len(p))
	}
	plan := &GCPlan{TimeUnixMs: int64(binary.BigEndian.Uint64(p))}
	n := binary.BigEndian.Uint32(p[8:])
	p = p[12:]
	if uint64(len(p)) != uint64(n)*gcVolumeLen || n == 0 {
		return nil, fmt.Errorf("%w: gc plan declares %d volumes but carries %d bytes", ErrInvalidCommand, n, len(p))
	}
	plan.Volumes = make([]GCVolume, n)
	for i := range plan.Volumes {
		vid, err := volume.IDFromBytes(p[:16])
		if err != nil {
			return nil, fmt.Errorf("%w: gc plan volumes[%d]: %w", ErrInvalidCommand, i, err)
		}
		v := GCVolume{VID: vid, Horizon: volume.LSN(binary.BigEndian.Uint64(p[16:])), Base: volume.LSN(binary.BigEndian.Uint64(p[24:]))}
		if v.Horizon == 0 || v.Base > v.Horizon || (i > 0 && compareVID(plan.Volumes[i-1].VID, vid) >= 0) {
			return nil, fmt.Errorf("%w: gc plan volumes[%d]: horizon %d, base %d, or not sorted", ErrInvalidCommand, i, v.Horizon, v.Base)
		}
		plan.Volumes[i] = v
		p = p[gcVolumeLen:]
	}
	return plan, nil
}

// applyGCPlan opens a GC round: every volume's horizon moves forward.
// Horizons never pass the volume's newest checkpoint (so the buffer is
// always above them) and never move back; the base must be a checkpoint at
// or below the horizon.
func (s *state) applyGCPlan(p *GCPlan, index uint64) *AdminResult {
	if s.gc != nil {
		return &AdminResult{Err: fmt.Errorf("%w: gc round %d is still open", ErrFlushRejected, s.gc.Round)}
	}
	for _, gv := range p.Volumes {
		v := s.volumes[gv.VID]
		switch {
		case v == nil:
			return &AdminResult{Err: fmt.Errorf("%w: gc of unknown volume %s", ErrFlushRejected, gv.VID)}
		case gv.Horizon < v.horizon || gv.Horizon > v.checkpoint:
			return &AdminResult{Err: fmt.Errorf("%w: gc of %s: horizon %d outside [%d, checkpoint %d]", ErrFlushRejected, gv.VID, gv.Horizon, v.horizon, v.checkpoint)}
		}
	}
	for _, gv := range p.Volumes {
		s.volumes[gv.VID].horizon = gv.Horizon
	}
	cp := *p
	cp.Round = index
	cp.Volumes = slices.Clone(p.Volumes)
	s.gc = &cp
	return &AdminResult{Round: index}
}

func (s *state) applyGCDone(round uint64) *AdminResult {
	if s.gc == nil || s.gc.Round != round {
		return &AdminResult{Err: fmt.Errorf("%w: gc round %d is not open", ErrFlushRejected, round)}
	}
	s.gc = nil
	return &AdminResult{Round: round}
}

// GC returns a copy of the open GC round, or nil.
func (f *FSM) GC() *GCPlan {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.st.gc == nil {
		return nil
	}
	cp := *f.st.gc
	cp.Volumes = slices.Clone(cp.Volumes)
	return &cp
}

// GCCandidate is a volume GC may look at: it has a checkpoint.
type GCCandidate struct {
	VID        volume.ID
	Head       volume.LSN
	Checkpoint volume.LSN
	Horizon    volume.LSN
}

// GCCandidates returns the volumes with a checkpoint, not quarantined,
// sorted by VID.
func (f *FSM) GCCandidates() []GCCandidate {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []GCCandidate
	for vid, v := range f.st.volumes {
		if _, q := f.st.quarantine[vid]; q || v.checkpoint == 0 {
			continue
		}
		out = append(out, GCCandidate{VID: vid, Head: v.head.LSN, Checkpoint: v.checkpoint, Horizon: v.horizon})
	}
	slices.SortFunc(out, func(a, b GCCandidate) int { return compareVID(a.VID, b.VID) })
	return out
}
