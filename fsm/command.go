package fsm

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/graft-cluster/graft/volume"
)

// Command encoding. Every Raft log entry the cluster writes is one command:
//
//	magic 'G' (1) | version 1 (1) | kind (1) | body
//
// All integers are big-endian. Bodies:
//
//	commit:      vid (16) | base_lsn (8) | page_count (4) | time_unix_ms (8)
//	             | max_buffer_bytes (8) | max_volume_buffer_bytes (8)
//	             | hash (32) | n (4) | n x (idx (4) | page (4096))
//	register:    len-prefixed (2) id, raft_addr, api_addr
//	unregister:  len-prefixed (2) id
//	flush plan:  time_unix_ms (8) | n (4) | n x (vid (16) | from (8) | to (8) | segment (16))
//	flush done:  round (8)
//	adopt:       vid (16) | head_lsn (8) | page_count (4) | n (4) | n x from (8)
//	recovered:   empty
//	quarantine:  vid (16) | key, reason (u16 length + bytes each)
//	unquarantine: vid (16)
//	identity:    cluster id (u16 length + bytes)
//	commit batch: n (4) | n x (len (4) | commit body)
//	revoke token: expires_unix (8) | time_unix (8) | token id (u16 length + bytes)
//	checkpoint:  vid (16) | lsn (8)
//	gc plan:     time_unix_ms (8) | n (4) | n x (vid (16) | horizon (8) | base (8))
//	gc done:     round (8)
//	tombstone:   vid (16) | time_unix_ms (8) | purged (1)
//
// A commit batch carries n >= 1 commits proposed together (the leader
// coalesces concurrent commits into one log entry); Apply decides them in
// order exactly as n consecutive commit entries, each with its own result.
//
// An adopt may carry a trailing checkpoint lsn (8): the froms then list only
// the records after it.
const (
	cmdMagic   byte = 'G'
	cmdVersion byte = 1

	kindCommit       byte = 1
	kindRegister     byte = 2
	kindUnregister   byte = 3
	kindFlushPlan    byte = 4
	kindFlushDone    byte = 5
	kindAdopt        byte = 6
	kindRecovered    byte = 7
	kindQuarantine   byte = 8
	kindUnquarantine byte = 9
	kindIdentity     byte = 10
	kindCommitBatch  byte = 11
	kindRevokeToken  byte = 12
	kindCheckpoint   byte = 13
	kindGCPlan       byte = 14
	kindGCDone       byte = 15
	kindTombstone    byte = 16

	cmdHeaderLen    = 3
	commitFixedLen  = 16 + 8 + 4 + 8 + 8 + 8 + 32 + 4
	commitPageLen   = 4 + volume.PageSize
	maxNodeFieldLen = 1024
	planVolumeLen   = 16 + 8 + 8 + 16
	adoptFixedLen   = 16 + 8 + 4 + 4
	// maxBatchCommits caps the commits one batch entry may declare, so a
	// corrupt count cannot make the decoder allocate without bound.
	maxBatchCommits = 1 << 16
)

// AdoptCommand installs a volume recovered from the object store: its head
// and the first LSNs of its log records (ascending, the last at or below
// the head). Only valid before recovery finishes, for a volume the state
// does not have.
type AdoptCommand struct {
	Head  volume.Snapshot
	Froms []volume.LSN
	// Checkpoint is the newest checkpoint's LSN (0: none); Froms then hold
	// only the records after it.
	Checkpoint volume.LSN
}

// CommitCommand proposes one commit. The proposing node fills Time, the
// limits and Hash, so Apply stays deterministic and cheap.
type CommitCommand struct {
	VID       volume.ID
	BaseLSN   volume.LSN
	PageCount uint32
	// TimeUnixMs is the proposing node's clock, in Unix milliseconds.
	TimeUnixMs int64
	// MaxBufferBytes caps the page bytes buffered across all volumes;
	// 0 means no limit.
	MaxBufferBytes uint64
	// MaxVolumeBufferBytes caps the page bytes buffered for one volume;
	// 0 means no limit.
	MaxVolumeBufferBytes uint64
	// Hash is volume.CommitHash(VID, BaseLSN+1, PageCount, Pages).
	Hash volume.Hash
	// Pages are sorted by index, unique, and validated.
	Pages []volume.PageWrite
}

// NodeInfo is one member's entry in the replicated node directory.
type NodeInfo struct {
	ID       string
	RaftAddr string
	APIAddr  string
}

// EncodeCommit encodes c as a Raft log entry in one allocation.
func EncodeCommit(c *CommitCommand) []byte {
	b := make([]byte, cmdHeaderLen+CommitLen(c))
	b[0], b[1], b[2] = cmdMagic, cmdVersion, kindCommit
	putCommit(b[cmdHeaderLen:], c)
	return b
}

// putCommit writes c's commit body into p, which is exactly CommitLen(c)
// bytes.
func putCommit(p []byte, c *CommitCommand) {
	copy(p[0:16], c.VID[:])
	binary.BigEndian.PutUint64(p[16:], uint64(c.BaseLSN))
	binary.BigEndian.PutUint32(p[24:], c.PageCount)
	binary.BigEndian.PutUint64(p[28:], uint64(c.TimeUnixMs))
	binary.BigEndian.PutUint64(p[36:], c.MaxBufferBytes)
	binary.BigEndian.PutUint64(p[44:], c.MaxVolumeBufferBytes)
	copy(p[52:84], c.Hash[:])
	binary.BigEndian.PutUint32(p[84:], uint32(len(c.Pages)))
	p = p[commitFixedLen:]
	for _, pg := range c.Pages {
		binary.BigEndian.PutUint32(p, uint32(pg.Idx))
		copy(p[4:commitPageLen], pg.Data)
		p = p[commitPageLen:]
	}
}

// CommitLen returns the size of c's commit body in a log entry (the kind-1
// entry is CommitLen + 3 bytes; a batch adds 4 per commit).
func CommitLen(c *CommitCommand) int { return commitFixedLen + len(c.Pages)*commitPageLen }

// EncodeCommitBatch encodes cs, in order, as one commit-batch log entry in
// one allocation. One commit is encoded as a plain commit entry (kind 1),
// which Apply answers with a *CommitResult; more as a batch (kind 11),
// answered with a *CommitBatchResult.
func EncodeCommitBatch(cs []*CommitCommand) []byte {
	if len(cs) == 1 {
		return EncodeCommit(cs[0])
	}
	size := cmdHeaderLen + 4
	for _, c := range cs {
		size += 4 + CommitLen(c)
	}
	b := make([]byte, size)
	b[0], b[1], b[2] = cmdMagic, cmdVersion, kindCommitBatch
	binary.BigEndian.PutUint32(b[cmdHeaderLen:], uint32(len(cs)))
	p := b[cmdHeaderLen+4:]
	for _, c := range cs {
		n := CommitLen(c)
		binary.BigEndian.PutUint32(p, uint32(n))
		putCommit(p[4:4+n], c)
		p = p[4+n:]
	}
	return b
}

// EncodeRegister encodes a node-directory entry.
func EncodeRegister(n NodeInfo) []byte {
	b := []byte{cmdMagic, cmdVersion, kindRegister}
	b = appendString(b, n.ID)
	b = appendString(b, n.RaftAddr)
	return appendString(b, n.APIAddr)
}

// EncodeUnregister encodes the removal of a node-directory entry.
func EncodeUnregister(id string) []byte {
	return appendString([]byte{cmdMagic, cmdVersion, kindUnregister}, id)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// EncodeFlushPlan encodes a flush round proposal (Round is ignored).
func EncodeFlushPlan(p *FlushPlan) []byte {
	b := make([]byte, cmdHeaderLen, cmdHeaderLen+12+len(p.Volumes)*planVolumeLen)
	b[0], b[1], b[2] = cmdMagic, cmdVersion, kindFlushPlan
	b = binary.BigEndian.AppendUint64(b, uint64(p.TimeUnixMs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Volumes)))
	for _, v := range p.Volumes {
		b = append(b, v.VID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(v.From))
		b = binary.BigEndian.AppendUint64(b, uint64(v.To))
		b = append(b, v.Segment[:]...)
	}
	return b
}

// EncodeFlushDone encodes the completion of flush round round.
func EncodeFlushDone(round uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{cmdMagic, cmdVersion, kindFlushDone}, round)
}

// EncodeAdopt encodes the adoption of a recovered volume.
func EncodeAdopt(a *AdoptCommand) []byte {
	b := []byte{cmdMagic, cmdVersion, kindAdopt}
	b = append(b, a.Head.VID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Head.LSN))
	b = binary.BigEndian.AppendUint32(b, a.Head.PageCount)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Froms)))
	for _, f := range a.Froms {
		b = binary.BigEndian.AppendUint64(b, uint64(f))
	}
	if a.Checkpoint > 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(a.Checkpoint))
	}
	return b
}

// EncodeCheckpoint encodes that the checkpoint of vid at lsn is in the
// object store: the volume's history then starts after it.
func EncodeCheckpoint(vid volume.ID, lsn volume.LSN) []byte {
	b := append([]byte{cmdMagic, cmdVersion, kindCheckpoint}, vid[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(lsn))
}

// EncodeRecovered encodes the end of recovery: commits may start.
func EncodeRecovered() []byte { return []byte{cmdMagic, cmdVersion, kindRecovered} }

// EncodeQuarantine encodes the quarantine of q.VID (q.Index is ignored).
// Key and reason longer than 1024 bytes are cut.
func EncodeQuarantine(q Quarantine) []byte {
	b := append([]byte{cmdMagic, cmdVersion, kindQuarantine}, q.VID[:]...)
	b = appendString(b, cut(q.Key, maxNodeFieldLen))
	return appendString(b, cut(q.Reason, maxNodeFieldLen))
}

// EncodeUnquarantine encodes the lifting of a volume's quarantine.
func EncodeUnquarantine(vid volume.ID) []byte {
	return append([]byte{cmdMagic, cmdVersion, kindUnquarantine}, vid[:]...)
}

// EncodeIdentity encodes the cluster's identity in its object store. It
// takes effect only while the state has none.
func EncodeIdentity(clusterID string) []byte {
	return appendString([]byte{cmdMagic, cmdVersion, kindIdentity}, cut(clusterID, maxNodeFieldLen))
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// command is a decoded log entry: exactly one field is set.
type command struct {
	commit       *CommitCommand
	register     *NodeInfo
	unregister   string
	plan         *FlushPlan
	done         uint64
	adopt        *AdoptCommand
	recovered    bool
	quarantine   *Quarantine
	unquarantine *volume.ID
	identity     string
	batch        []*CommitCommand
	checkpoint   *checkpointCmd
	gcPlan       *GCPlan
	gcDone       uint64
	tombstone    *Tombstone
	revoke       *RevokeToken
}

type checkpointCmd struct {
	vid volume.ID
	lsn volume.LSN
}

// decodeCommand decodes a log entry. Page slices alias b. Every length is
// checked before use; malformed input returns an error wrapping
// ErrInvalidCommand and never panics.
func decodeCommand(b []byte) (command, error) {
	if len(b) < cmdHeaderLen {
		return command{}, fmt.Errorf("%w: %d bytes, shorter than the header", ErrInvalidCommand, len(b))
	}
	if b[0] != cmdMagic || b[1] != cmdVersion {
		return command{}, fmt.Errorf("%w: magic %#x version %d, want %#x version %d",
			ErrInvalidCommand, b[0], b[1], cmdMagic, cmdVersion)
	}
	body := b[cmdHeaderLen:]
	switch b[2] {
	case kindCommit:
		c, err := decodeCommit(body)
		return command{commit: c}, err
	case kindRegister:
		var n NodeInfo
		var err error
		if n.ID, body, err = readString(body); err != nil {
			return command{}, fmt.Errorf("%w: register id: %w", ErrInvalidCommand, err)
		}
		if n.RaftAddr, body, err = readString(body); err != nil {
			return command{}, fmt.Errorf("%w: register raft_addr: %w", ErrInvalidCommand, err)
		}
		if n.APIAddr, body, err = readString(body); err != nil {
			return command{}, fmt.Errorf("%w: register api_addr: %w", ErrInvalidCommand, err)
		}
		if len(body) != 0 || n.ID == "" {
			return command{}, fmt.Errorf("%w: register: trailing bytes or empty id", ErrInvalidCommand)
		}
		return command{register: &n}, nil
	case kindUnregister:
		id, rest, err := readString(body)
		if err != nil || len(rest) != 0 || id == "" {
			return command{}, fmt.Errorf("%w: unregister: malformed id", ErrInvalidCommand)
		}
		return command{unregister: id}, nil
	case kindFlushPlan:
		p, err := decodePlan(body)
		return command{plan: p}, err
	case kindFlushDone:
		if len(body) != 8 || binary.BigEndian.Uint64(body) == 0 {
			return command{}, fmt.Errorf("%w: flush done: want a non-zero 8-byte round", ErrInvalidCommand)
		}
		return command{done: binary.BigEndian.Uint64(body)}, nil
	case kindAdopt:
		a, err := decodeAdopt(body)
		return command{adopt: a}, err
	case kindRecovered:
		if len(body) != 0 {
			return command{}, fmt.Errorf("%w: recovered: %d trailing bytes", ErrInvalidCommand, len(body))
		}
		return command{recovered: true}, nil
	case kindQuarantine:
		if len(body) < 16 {
			return command{}, fmt.Errorf("%w: quarantine: %d bytes, want a volume id", ErrInvalidCommand, len(body))
		}
		vid, err := volume.IDFromBytes(body[:16])
		if err != nil {
			return command{}, fmt.Errorf("%w: quarantine: %w", ErrInvalidCommand, err)
		}
		q := Quarantine{VID: vid}
		rest := body[16:]
		if q.Key, rest, err = readString(rest); err != nil || q.Key == "" {
			return command{}, fmt.Errorf("%w: quarantine: malformed or empty key", ErrInvalidCommand)
		}
		if q.Reason, rest, err = readString(rest); err != nil || len(rest) != 0 {
			return command{}, fmt.Errorf("%w: quarantine: malformed reason or trailing bytes", ErrInvalidCommand)
		}
		return command{quarantine: &q}, nil
	case kindUnquarantine:
		if len(body) != 16 {
			return command{}, fmt.Errorf("%w: unquarantine: %d bytes, want a 16-byte volume id", ErrInvalidCommand, len(body))
		}
		vid, err := volume.IDFromBytes(body)
		if err != nil {
			return command{}, fmt.Errorf("%w: unquarantine: %w", ErrInvalidCommand, err)
		}
		return command{unquarantine: &vid}, nil
	case kindIdentity:
		id, rest, err := readString(body)
		if err != nil || len(rest) != 0 || id == "" {
			return command{}, fmt.Errorf("%w: identity: malformed or empty cluster id", ErrInvalidCommand)
		}
		return command{identity: id}, nil
	case kindCommitBatch:
		cs, err := decodeCommitBatch(body)
		return command{batch: cs}, err
	case kindTombstone:
		t, err := decodeTombstone(body)
		return command{tombstone: t}, err
	case kindGCPlan:
		p, err := decodeGCPlan(body)
		return command{gcPlan: p}, err
	case kindGCDone:
		if len(body) != 8 || binary.BigEndian.Uint64(body) == 0 {
			return command{}, fmt.Errorf("%w: gc done: want a non-zero 8-byte round", ErrInvalidCommand)
		}
		return command{gcDone: binary.BigEndian.Uint64(body)}, nil
	case kindCheckpoint:
		if len(body) != 24 {
			return command{}, fmt.Errorf("%w: checkpoint: %d bytes, want 24", ErrInvalidCommand, len(body))
		}
		vid, err := volume.IDFromBytes(body[:16])
		if err != nil {
			return command{}, fmt.Errorf("%w: checkpoint: %w", ErrInvalidCommand, err)
		}
		lsn := volume.LSN(binary.BigEndian.Uint64(body[16:]))
		if lsn == 0 {
			return command{}, fmt.Errorf("%w: checkpoint at lsn 0", ErrInvalidCommand)
		}
		return command{checkpoint: &checkpointCmd{vid: vid, lsn: lsn}}, nil
	case kindRevokeToken:
		r, err := decodeRevokeToken(body)
		return command{revoke: r}, err
	default:
		return command{}, fmt.Errorf("%w: unknown kind %d", ErrInvalidCommand, b[2])
	}
}

func decodePlan(p []byte) (*FlushPlan, error) {
	if len(p) < 12 {
		return nil, fmt.Errorf("%w: flush plan is %d bytes, want at least 12", ErrInvalidCommand, len(p))
	}
	plan := &FlushPlan{TimeUnixMs: int64(binary.BigEndian.Uint64(p))}
	n := binary.BigEndian.Uint32(p[8:])
	p = p[12:]
	if uint64(len(p)) != uint64(n)*planVolumeLen {
		return nil, fmt.Errorf("%w: flush plan declares %d volumes but carries %d bytes", ErrInvalidCommand, n, len(p))
	}
	plan.Volumes = make([]PlanVolume, n)
	for i := range plan.Volumes {
		vid, err := volume.IDFromBytes(p[:16])
		if err != nil {
			return nil, fmt.Errorf("%w: flush plan volumes[%d]: %w", ErrInvalidCommand, i, err)
		}
		pv := PlanVolume{VID: vid, From: volume.LSN(binary.BigEndian.Uint64(p[16:])), To: volume.LSN(binary.BigEndian.Uint64(p[24:]))}
		copy(pv.Segment[:], p[32:48])
		if pv.From == 0 || pv.To < pv.From {
			return nil, fmt.Errorf("%w: flush plan volumes[%d]: range [%d, %d]", ErrInvalidCommand, i, pv.From, pv.To)
		}
		plan.Volumes[i] = pv
		p = p[planVolumeLen:]
	}
	return plan, nil
}

func decodeAdopt(p []byte) (*AdoptCommand, error) {
	if len(p) < adoptFixedLen {
		return nil, fmt.Errorf("%w: adopt is %d bytes, want at least %d", ErrInvalidCommand, len(p), adoptFixedLen)
	}
	vid, err := volume.IDFromBytes(p[:16])
	if err != nil {
		return nil, fmt.Errorf("%w: adopt: %w", ErrInvalidCommand, err)
	}
	a := &AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: volume.LSN(binary.BigEndian.Uint64(p[16:])), PageCount: binary.BigEndian.Uint32(p[24:])}}
	n := binary.BigEndian.Uint32(p[28:])
	p = p[adoptFixedLen:]
	if uint64(len(p)) == uint64(n)*8+8 {
		a.Checkpoint = volume.LSN(binary.BigEndian.Uint64(p[len(p)-8:]))
		p = p[:len(p)-8]
		if a.Checkpoint == 0 || a.Checkpoint > a.Head.LSN {
			return nil, fmt.Errorf("%w: adopt checkpoint %d outside [1, head %d]", ErrInvalidCommand, a.Checkpoint, a.Head.LSN)
		}
	}
	if uint64(len(p)) != uint64(n)*8 {
		return nil, fmt.Errorf("%w: adopt declares %d records but carries %d bytes", ErrInvalidCommand, n, len(p))
	}
	a.Froms = make([]volume.LSN, n)
	for i := range a.Froms {
		a.Froms[i] = volume.LSN(binary.BigEndian.Uint64(p[i*8:]))
		if a.Froms[i] <= a.Checkpoint || (i > 0 && a.Froms[i] <= a.Froms[i-1]) || a.Froms[i] > a.Head.LSN {
			return nil, fmt.Errorf("%w: adopt froms[%d] = %d: not ascending within [1, head %d]", ErrInvalidCommand, i, a.Froms[i], a.Head.LSN)
		}
	}
	if a.Head.LSN == 0 || (n == 0 && a.Checkpoint != a.Head.LSN) || (n > 0 && a.Checkpoint > 0 && a.Froms[0] != a.Checkpoint+1) {
		return nil, fmt.Errorf("%w: adopt of volume %s with head %d, checkpoint %d and %d records", ErrInvalidCommand, vid, a.Head.LSN, a.Checkpoint, n)
	}
	return a, nil
}

func decodeCommit(p []byte) (*CommitCommand, error) {
	c := &CommitCommand{}
	if err := decodeCommitInto(c, p, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeCommitInto decodes a commit body into c. Its pages go into pages
// when that has room for them (a batch decodes all its pages into one
// slice), else into a new slice.
func decodeCommitInto(c *CommitCommand, p []byte, pages []volume.PageWrite) error {
	if len(p) < commitFixedLen {
		return fmt.Errorf("%w: commit body is %d bytes, want at least %d", ErrInvalidCommand, len(p), commitFixedLen)
	}
	vid, err := volume.IDFromBytes(p[0:16])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	c.VID = vid
	c.BaseLSN = volume.LSN(binary.BigEndian.Uint64(p[16:]))
	c.PageCount = binary.BigEndian.Uint32(p[24:])
	c.TimeUnixMs = int64(binary.BigEndian.Uint64(p[28:]))
	c.MaxBufferBytes = binary.BigEndian.Uint64(p[36:])
	c.MaxVolumeBufferBytes = binary.BigEndian.Uint64(p[44:])
	copy(c.Hash[:], p[52:84])
	n := binary.BigEndian.Uint32(p[84:])
	p = p[commitFixedLen:]
	if uint64(len(p)) != uint64(n)*commitPageLen {
		return fmt.Errorf("%w: commit declares %d pages but carries %d bytes", ErrInvalidCommand, n, len(p))
	}
	if c.BaseLSN == ^volume.LSN(0) {
		return fmt.Errorf("%w: base_lsn %d leaves no room for a next LSN", ErrInvalidCommand, c.BaseLSN)
	}
	if cap(pages) < int(n) {
		pages = make([]volume.PageWrite, n)
	}
	c.Pages = pages[:n:n]
	ok := true
	for i := range c.Pages {
		idx := volume.PageIdx(binary.BigEndian.Uint32(p))
		c.Pages[i] = volume.PageWrite{Idx: idx, Data: p[4:commitPageLen:commitPageLen]}
		// Valid, within page_count, strictly ascending (so no duplicates).
		ok = ok && idx.Valid() && uint32(idx) <= c.PageCount && (i == 0 || idx > c.Pages[i-1].Idx)
		p = p[commitPageLen:]
	}
	if ok {
		return nil
	}
	// The proposer validated the pages; a corrupt entry is rejected
	// identically on every replica instead of poisoning state, with
	// ValidateCommit's message when it has one.
	if _, err := volume.ValidateCommit(c.PageCount, c.Pages, volume.Limits{}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	return fmt.Errorf("%w: pages are not sorted by index", ErrInvalidCommand)
}

// decodeCommitBatch decodes a batch body. Any malformed commit rejects the
// whole entry (it then changes nothing, like a malformed commit entry).
func decodeCommitBatch(p []byte) ([]*CommitCommand, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: commit batch is %d bytes, want a count", ErrInvalidCommand, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	// Each commit takes at least 4 + commitFixedLen bytes: check the count
	// against what the entry can hold before allocating for it.
	if n == 0 || n > maxBatchCommits || uint64(n)*(4+commitFixedLen) > uint64(len(p)) {
		return nil, fmt.Errorf("%w: commit batch declares %d commits in %d bytes", ErrInvalidCommand, n, len(p))
	}
	// One allocation for the commands and one for all their pages (at most
	// one page per commitPageLen bytes left after the fixed parts).
	cmds := make([]CommitCommand, n)
	cs := make([]*CommitCommand, n)
	pages := make([]volume.PageWrite, (uint64(len(p))-uint64(n)*(4+commitFixedLen))/commitPageLen)
	for i := range cs {
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: commit batch [%d]: truncated length", ErrInvalidCommand, i)
		}
		l := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(l) > uint64(len(p)) {
			return nil, fmt.Errorf("%w: commit batch [%d]: %d bytes declared, %d left", ErrInvalidCommand, i, l, len(p))
		}
		if err := decodeCommitInto(&cmds[i], p[:l], pages); err != nil {
			return nil, fmt.Errorf("commit batch [%d]: %w", i, err)
		}
		cs[i] = &cmds[i]
		// The estimate assumed every commit's fixed part is there: with a
		// truncated last commit an earlier one may have got its own slice.
		if k := len(cmds[i].Pages); k <= len(pages) {
			pages = pages[k:]
		} else {
			pages = nil
		}
		p = p[l:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: commit batch: %d trailing bytes", ErrInvalidCommand, len(p))
	}
	return cs, nil
}

func readString(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, fmt.Errorf("truncated length")
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > maxNodeFieldLen || len(b) < 2+n {
		return "", nil, fmt.Errorf("length %d out of range", n)
	}
	return string(b[2 : 2+n]), b[2+n:], nil
}
