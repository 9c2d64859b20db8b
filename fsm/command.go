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
//	revoke token: expires_unix (8) | time_unix (8) | token id (u16 length + bytes)
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
	kindRevokeToken  byte = 12

	cmdHeaderLen    = 3
	commitFixedLen  = 16 + 8 + 4 + 8 + 8 + 8 + 32 + 4
	commitPageLen   = 4 + volume.PageSize
	maxNodeFieldLen = 1024
	planVolumeLen   = 16 + 8 + 8 + 16
	adoptFixedLen   = 16 + 8 + 4 + 4
)

// AdoptCommand installs a volume recovered from the object store: its head
// and the first LSNs of its log records (ascending, the last at or below
// the head). Only valid before recovery finishes, for a volume the state
// does not have.
type AdoptCommand struct {
	Head  volume.Snapshot
	Froms []volume.LSN
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
	b := make([]byte, cmdHeaderLen+commitFixedLen+len(c.Pages)*commitPageLen)
	b[0], b[1], b[2] = cmdMagic, cmdVersion, kindCommit
	p := b[cmdHeaderLen:]
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
	return b
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
	revoke       *RevokeToken
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
	if uint64(len(p)) != uint64(n)*8 {
		return nil, fmt.Errorf("%w: adopt declares %d records but carries %d bytes", ErrInvalidCommand, n, len(p))
	}
	a.Froms = make([]volume.LSN, n)
	for i := range a.Froms {
		a.Froms[i] = volume.LSN(binary.BigEndian.Uint64(p[i*8:]))
		if a.Froms[i] == 0 || (i > 0 && a.Froms[i] <= a.Froms[i-1]) || a.Froms[i] > a.Head.LSN {
			return nil, fmt.Errorf("%w: adopt froms[%d] = %d: not ascending within [1, head %d]", ErrInvalidCommand, i, a.Froms[i], a.Head.LSN)
		}
	}
	if a.Head.LSN == 0 || n == 0 {
		return nil, fmt.Errorf("%w: adopt of volume %s with head %d and %d records", ErrInvalidCommand, vid, a.Head.LSN, n)
	}
	return a, nil
}

func decodeCommit(p []byte) (*CommitCommand, error) {
	if len(p) < commitFixedLen {
		return nil, fmt.Errorf("%w: commit body is %d bytes, want at least %d", ErrInvalidCommand, len(p), commitFixedLen)
	}
	c := &CommitCommand{}
	vid, err := volume.IDFromBytes(p[0:16])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
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
		return nil, fmt.Errorf("%w: commit declares %d pages but carries %d bytes", ErrInvalidCommand, n, len(p))
	}
	if c.BaseLSN == ^volume.LSN(0) {
		return nil, fmt.Errorf("%w: base_lsn %d leaves no room for a next LSN", ErrInvalidCommand, c.BaseLSN)
	}
	c.Pages = make([]volume.PageWrite, n)
	for i := range c.Pages {
		c.Pages[i] = volume.PageWrite{
			Idx:  volume.PageIdx(binary.BigEndian.Uint32(p)),
			Data: p[4:commitPageLen:commitPageLen],
		}
		p = p[commitPageLen:]
	}
	// The proposer validated the pages; check again so that a corrupt entry
	// is rejected identically on every replica instead of poisoning state.
	sorted, err := volume.ValidateCommit(c.PageCount, c.Pages, volume.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	for i := range sorted {
		if sorted[i].Idx != c.Pages[i].Idx {
			return nil, fmt.Errorf("%w: pages are not sorted by index", ErrInvalidCommand)
		}
	}
	return c, nil
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
