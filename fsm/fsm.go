package fsm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/volume"
)

// Errors returned by Apply results and queries.
var (
	// ErrInvalidCommand means a log entry could not be decoded. Every
	// replica rejects it identically; it changes nothing.
	ErrInvalidCommand = errors.New("fsm: invalid command")
	// ErrStale means the commit's base LSN is not the volume's head.
	ErrStale = errors.New("fsm: base lsn is not the head")
	// ErrBufferFull means accepting the commit would exceed a buffer limit.
	ErrBufferFull = errors.New("fsm: buffer full")
	// ErrFutureLSN means a read asked for an LSN past the volume's head.
	ErrFutureLSN = errors.New("fsm: lsn is past the head")
	// ErrNotBuffered means the asked-for history is no longer in the buffer
	// (it was flushed: read it from the object store, see History).
	ErrNotBuffered = errors.New("fsm: lsn not in the buffer")
	// ErrFlushRejected means a flush or recovery entry did not match the
	// state (another round is open, a range does not start at the flushed
	// watermark, the volume exists already...). It changed nothing.
	ErrFlushRejected = errors.New("fsm: flush entry rejected")
	// ErrQuarantined means the volume is quarantined: the object store holds
	// a log record of it that conflicts with the cluster's state (another
	// writer on the prefix, a damaged record, a bucket ahead of the state).
	// Its commits are refused and it is not flushed until an operator lifts
	// the quarantine. Errors carrying it are *QuarantineError.
	ErrQuarantined = errors.New("fsm: volume quarantined")
)

// StaleError is the rejection of a commit whose base is not the head.
type StaleError struct {
	Base volume.LSN
	Head volume.Snapshot
	// Flushed is set when the commit at Base+1 is no longer buffered, so
	// whether this was a retry of it can only be told from its log record.
	Flushed bool
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("fsm: base lsn %d is not the head (head is %d)", e.Base, e.Head.LSN)
}

// Unwrap lets errors.Is(err, ErrStale) match.
func (e *StaleError) Unwrap() error { return ErrStale }

// CommitResult is the response of Apply for a commit entry.
type CommitResult struct {
	// Snapshot is the volume's snapshot after the commit.
	Snapshot volume.Snapshot
	// Hash is the commit's identity.
	Hash volume.Hash
	// Duplicate is set when the entry was an identical retry of the commit
	// already at its LSN; Snapshot and Hash are that commit's.
	Duplicate bool
	// Err is nil when accepted; otherwise a *StaleError, or wraps
	// ErrBufferFull or ErrInvalidCommand.
	Err error
}

// CommitBatchResult is the response of Apply for a commit-batch entry:
// Results[i] is the i-th commit's result, exactly what it would have got as
// its own entry at that point.
type CommitBatchResult struct {
	Results []*CommitResult
}

// FSM implements raft.FSM and raft.BatchingFSM. Queries are safe to call
// concurrently with Apply.
type FSM struct {
	mu      sync.RWMutex
	st      *state
	changed chan struct{} // closed and replaced whenever state changes
}

var _ raft.BatchingFSM = (*FSM)(nil)

// state is everything a snapshot holds.
type state struct {
	applied     uint64 // Raft index of the last applied entry
	volumes     map[volume.ID]*volState
	nodes       map[string]NodeInfo
	bufferBytes uint64     // page bytes buffered across all volumes
	plan        *FlushPlan // the open flush round, or nil
	recovered   bool       // recovery from the object store is done
	// clusterID is the identity this cluster wrote into (or adopted from)
	// its object store; "" until the first leader set it.
	clusterID string
	// quarantine holds the quarantined volumes. A quarantined volume may
	// have no volState (recovery could not read its head).
	quarantine map[volume.ID]Quarantine
	// gc is the open GC round, or nil.
	gc *GCPlan
	// deleted holds the deleted volumes' tombstones.
	deleted map[volume.ID]Tombstone
	// revoked maps revoked token IDs to their expiry (Unix seconds, 0:
	// kept for good). Replaced, never modified in place.
	revoked map[string]int64
}

type volState struct {
	head volume.Snapshot
	// commits holds the buffered commits, commits[i].lsn == first+i. It is
	// only ever appended to or replaced, never modified in place, so a
	// snapshot can keep the slice header. Everything below first is flushed
	// (first-1 is the flushed watermark).
	first   volume.LSN
	commits []*commitRec
	// froms are the first LSNs of the volume's flushed log records after
	// the newest checkpoint, ascending; the last record ends at first-1.
	// Append-only, except that a checkpoint replaces it with its tail.
	froms []volume.LSN
	// checkpoint is the LSN of the newest checkpoint in the object store
	// (0: none); froms[0] == checkpoint+1 when both exist.
	checkpoint volume.LSN
	// sinceBytes are the page bytes flushed since the newest checkpoint.
	sinceBytes uint64
	// horizon is the oldest readable LSN (0: everything), moved forward
	// only by GC plans; it is never above checkpoint.
	horizon volume.LSN
	// pages maps a page index to its buffered versions, ascending by LSN;
	// same append-only discipline as commits.
	pages       map[volume.PageIdx][]pageVersion
	bufferBytes uint64
}

type commitRec struct {
	lsn        volume.LSN
	pageCount  uint32
	hash       volume.Hash
	timeUnixMs int64
	graft      volume.PageSet
	pages      []volume.PageWrite // sorted by index
}

type pageVersion struct {
	lsn  volume.LSN
	data []byte
}

// New returns an empty state machine.
func New() *FSM {
	return &FSM{st: newState(), changed: make(chan struct{})}
}

func newState() *state {
	return &state{volumes: map[volume.ID]*volState{}, nodes: map[string]NodeInfo{}, quarantine: map[volume.ID]Quarantine{}, deleted: map[volume.ID]Tombstone{}}
}

// Apply applies one committed log entry.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.applyLocked(l)
	f.notifyLocked()
	return r
}

// ApplyBatch applies a batch of committed log entries under one lock.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	f.notifyLocked()
	return out
}

func (f *FSM) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *FSM) applyLocked(l *raft.Log) any {
	if l.Index <= f.st.applied {
		// Raft never re-applies an index; refuse rather than double-apply.
		return &CommitResult{Err: fmt.Errorf("%w: index %d already applied (at %d)", ErrInvalidCommand, l.Index, f.st.applied)}
	}
	f.st.applied = l.Index
	if l.Type != raft.LogCommand {
		return nil
	}
	cmd, err := decodeCommand(l.Data)
	if err != nil {
		return &CommitResult{Err: err}
	}
	switch {
	case cmd.commit != nil:
		return f.st.applyCommit(cmd.commit)
	case cmd.batch != nil:
		out := &CommitBatchResult{Results: make([]*CommitResult, len(cmd.batch))}
		for i, c := range cmd.batch {
			out.Results[i] = f.st.applyCommit(c)
		}
		return out
	case cmd.plan != nil:
		return f.st.applyPlan(cmd.plan, l.Index)
	case cmd.done != 0:
		return f.st.applyDone(cmd.done)
	case cmd.adopt != nil:
		return f.st.applyAdopt(cmd.adopt)
	case cmd.recovered:
		f.st.recovered = true
		return &AdminResult{}
	case cmd.quarantine != nil:
		return f.st.applyQuarantine(cmd.quarantine, l.Index)
	case cmd.unquarantine != nil:
		return f.st.applyUnquarantine(*cmd.unquarantine)
	case cmd.revoke != nil:
		return f.st.applyRevokeToken(cmd.revoke)
	case cmd.identity != "":
		return f.st.applyIdentity(cmd.identity)
	case cmd.tombstone != nil:
		return f.st.applyTombstone(cmd.tombstone, l.Index)
	case cmd.gcPlan != nil:
		return f.st.applyGCPlan(cmd.gcPlan, l.Index)
	case cmd.gcDone != 0:
		return f.st.applyGCDone(cmd.gcDone)
	case cmd.checkpoint != nil:
		return f.st.applyCheckpoint(cmd.checkpoint.vid, cmd.checkpoint.lsn)
	case cmd.register != nil:
		f.st.nodes[cmd.register.ID] = *cmd.register
	default:
		delete(f.st.nodes, cmd.unregister)
	}
	return nil
}

func (s *state) applyCommit(c *CommitCommand) *CommitResult {
	v := s.volumes[c.VID]
	head := volume.Snapshot{VID: c.VID}
	if v != nil {
		head = v.head
	}
	lsn := c.BaseLSN + 1
	if _, ok := s.deleted[c.VID]; ok {
		return &CommitResult{Err: fmt.Errorf("%w: %s", ErrVolumeDeleted, c.VID)}
	}
	if q, ok := s.quarantine[c.VID]; ok {
		// An identical retry of a commit the volume already has keeps its
		// original ack; anything else is refused while quarantined.
		if v != nil && head.LSN > c.BaseLSN {
			if rec := v.commit(lsn); rec != nil && rec.hash == c.Hash {
				return &CommitResult{Snapshot: volume.Snapshot{VID: c.VID, LSN: lsn, PageCount: rec.pageCount}, Hash: rec.hash, Duplicate: true}
			}
		}
		return &CommitResult{Err: &QuarantineError{Quarantine: q}}
	}
	if PlantedSkipBaseCheck {
		lsn = head.LSN + 1 // the planted bug: a stale base overwrites the head
	} else if head.LSN != c.BaseLSN {
		if head.LSN > c.BaseLSN && v != nil {
			if rec := v.commit(lsn); rec != nil && (rec.hash == c.Hash || PlantedIgnoreCommitHash) {
				return &CommitResult{
					Snapshot:  volume.Snapshot{VID: c.VID, LSN: lsn, PageCount: rec.pageCount},
					Hash:      rec.hash,
					Duplicate: true,
				}
			}
		}
		// When base+1 is flushed, the caller may still recognise a retry
		// from the volume's log record (Flushed tells it to look).
		flushed := v != nil && head.LSN > c.BaseLSN && lsn < v.first
		return &CommitResult{Err: &StaleError{Base: c.BaseLSN, Head: head, Flushed: flushed}}
	}
	size := uint64(len(c.Pages)) * volume.PageSize
	if c.MaxBufferBytes > 0 && s.bufferBytes+size > c.MaxBufferBytes {
		return &CommitResult{Err: fmt.Errorf("%w: node buffer holds %d bytes, limit %d", ErrBufferFull, s.bufferBytes, c.MaxBufferBytes)}
	}
	var vb uint64
	if v != nil {
		vb = v.bufferBytes
	}
	if c.MaxVolumeBufferBytes > 0 && vb+size > c.MaxVolumeBufferBytes {
		return &CommitResult{Err: fmt.Errorf("%w: volume buffer holds %d bytes, limit %d", ErrBufferFull, vb, c.MaxVolumeBufferBytes)}
	}
	if v == nil {
		v = &volState{first: 1, pages: map[volume.PageIdx][]pageVersion{}}
		s.volumes[c.VID] = v
	}
	// Own the page bytes: the log entry's buffer belongs to Raft.
	data := make([]byte, size)
	pages := make([]volume.PageWrite, len(c.Pages))
	rec := &commitRec{lsn: lsn, pageCount: c.PageCount, hash: c.Hash, timeUnixMs: c.TimeUnixMs, pages: pages}
	for i, pg := range c.Pages {
		d := data[i*volume.PageSize : (i+1)*volume.PageSize : (i+1)*volume.PageSize]
		copy(d, pg.Data)
		pages[i] = volume.PageWrite{Idx: pg.Idx, Data: d}
		rec.graft.Add(pg.Idx)
		v.pages[pg.Idx] = append(v.pages[pg.Idx], pageVersion{lsn: lsn, data: d})
	}
	v.commits = append(v.commits, rec)
	v.head = volume.Snapshot{VID: c.VID, LSN: lsn, PageCount: c.PageCount}
	v.bufferBytes += size
	s.bufferBytes += size
	return &CommitResult{Snapshot: v.head, Hash: c.Hash}
}

// commit returns the buffered commit at lsn, or nil.
func (v *volState) commit(lsn volume.LSN) *commitRec {
	if lsn < v.first || lsn >= v.first+volume.LSN(len(v.commits)) {
		return nil
	}
	return v.commits[lsn-v.first]
}
