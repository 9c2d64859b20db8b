package fsm

import (
	"fmt"
	"slices"

	"github.com/graft-cluster/graft/volume"
)

// applyCheckpoint records that the checkpoint of vid at lsn is in the
// object store. lsn must be newer than the volume's checkpoint and end a
// flushed log record (a record starts at lsn+1, or lsn is the flushed
// watermark). The records up to lsn leave the volume's history, which
// therefore holds only the records since the newest checkpoint: the state
// stays bounded however long the volume lives.
func (s *state) applyCheckpoint(vid volume.ID, lsn volume.LSN) *AdminResult {
	v := s.volumes[vid]
	if v == nil {
		return &AdminResult{Err: fmt.Errorf("%w: checkpoint of unknown volume %s", ErrFlushRejected, vid)}
	}
	flushed := v.first - 1
	if lsn <= v.checkpoint || lsn > flushed {
		return &AdminResult{Err: fmt.Errorf("%w: checkpoint of %s at %d: want (%d, %d]", ErrFlushRejected, vid, lsn, v.checkpoint, flushed)}
	}
	i, found := slices.BinarySearch(v.froms, lsn+1)
	if !found && lsn != flushed {
		return &AdminResult{Err: fmt.Errorf("%w: checkpoint of %s at %d does not end a log record", ErrFlushRejected, vid, lsn)}
	}
	if lsn == flushed {
		i = len(v.froms)
	}
	v.froms = slices.Clone(v.froms[i:])
	v.checkpoint = lsn
	v.sinceBytes = 0
	return &AdminResult{}
}

// CheckpointStats are what the flusher needs to decide a volume's next
// checkpoint.
type CheckpointStats struct {
	// Checkpoint is the newest checkpoint's LSN (0: none).
	Checkpoint volume.LSN
	// Records is the number of log records after it.
	Records int
	// Bytes are the page bytes flushed after it.
	Bytes uint64
}

// CheckpointStats returns the volume's checkpoint progress.
func (f *FSM) CheckpointStats(vid volume.ID) CheckpointStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v := f.st.volumes[vid]
	if v == nil {
		return CheckpointStats{}
	}
	return CheckpointStats{Checkpoint: v.checkpoint, Records: len(v.froms), Bytes: v.sinceBytes}
}

// CheckpointCandidates returns the volumes due a checkpoint, sorted by VID:
// not quarantined, with flushed records after the newest checkpoint, and at
// least minRecords of them or minBytes flushed page bytes after it (a zero
// threshold never fires).
func (f *FSM) CheckpointCandidates(minRecords int, minBytes uint64) []volume.ID {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []volume.ID
	for vid, v := range f.st.volumes {
		if _, q := f.st.quarantine[vid]; q || len(v.froms) == 0 {
			continue
		}
		if (minRecords > 0 && len(v.froms) >= minRecords) || (minBytes > 0 && v.sinceBytes >= minBytes) {
			out = append(out, vid)
		}
	}
	slices.SortFunc(out, compareVID)
	return out
}
