package fsm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/volume"
)

// Snapshot format (big-endian):
//
//	magic "GRAFTSNP" | version u32 | applied u64 | recovered u32 (0 or 1)
//	| nodes u32 | per node: id, raft_addr, api_addr (u16 length + bytes)
//	| volumes u32 | per volume: vid (16) | head_lsn u64 | page_count u32
//	    | first u64 | commits u32 | per commit: lsn u64 | page_count u32
//	    | hash (32) | time_unix_ms i64 | pages u32 | per page: idx u32 | data (4096)
//	    | froms u32 | per record: from u64
//	| plan u32 (0 or 1) | if 1: round u64 | time_unix_ms i64 | volumes u32
//	    | per volume: vid (16) | from u64 | to u64 | segment (16)
//	| cluster_id (u16 length + bytes)
//	| quarantined u32 | per volume, sorted by vid: vid (16) | index u64
//	    | key, reason (u16 length + bytes each)
//	| revoked u32 | per token, sorted by id: id (u16 length + bytes) | expires_unix i64
//	| (version >= 5) checkpoints: see snapshot_checkpoint.go
//	| crc32c u32 of everything before it
//
// Version 1 (before flushing existed) lacks recovered, froms and plan; it
// restores as recovered with no flushed history. Version 2 (before
// quarantine and the bucket identity) lacks cluster_id and quarantined; it
// restores with neither. Version 3 (before token revocation) lacks revoked;
// it restores with an empty revocation list. Version 4 (before
// checkpoints) lacks the checkpoint section; it restores with no
// checkpoints, GC round or tombstones. Version 5 is written.
//
// Every version decision is here: snapVersion is what writeTo writes, and
// readSnapshot reads each section only from the version that added it
// (snapHas*, snapVersionCheckpoints in snapshot_checkpoint.go).
const (
	snapMagic   = "GRAFTSNP"
	snapVersion = snapVersionCheckpoints

	snapHasFlush      = 2 // recovered, froms, plan
	snapHasQuarantine = 3 // cluster_id, quarantined
	snapHasRevoked    = 4 // revoked
)

// ErrBadSnapshot means a snapshot could not be decoded or failed a check.
var ErrBadSnapshot = errors.New("fsm: bad snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type fsmSnapshot struct {
	applied    uint64
	recovered  bool
	nodes      map[string]NodeInfo
	volumes    []volSnap
	plan       *FlushPlan
	clusterID  string
	quarantine []Quarantine
	gc         *GCPlan
	tombstones []Tombstone
	revoked    map[string]int64 // never modified once captured
}

type volSnap struct {
	head       volume.Snapshot
	first      volume.LSN
	commits    []*commitRec
	froms      []volume.LSN
	checkpoint volume.LSN
	sinceBytes uint64
	horizon    volume.LSN
}

// Snapshot captures the state in O(volumes) under the lock. Commit records
// and page bytes are immutable and the slices are append-only, so the
// captured slice headers stay valid while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := &fsmSnapshot{
		applied: f.st.applied, recovered: f.st.recovered, nodes: maps.Clone(f.st.nodes), plan: f.st.plan,
		clusterID: f.st.clusterID, quarantine: f.st.quarantined(), gc: f.st.gc, tombstones: f.st.tombstones(),
		revoked: f.st.revoked,
	}
	for _, v := range f.st.volumes {
		s.volumes = append(s.volumes, volSnap{head: v.head, first: v.first, commits: v.commits, froms: v.froms[:len(v.froms):len(v.froms)],
			checkpoint: v.checkpoint, sinceBytes: v.sinceBytes, horizon: v.horizon})
	}
	return s, nil
}

// Persist writes the snapshot to sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.writeTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist fsm snapshot: %w", err)
	}
	return sink.Close()
}

// Release is a no-op: the snapshot holds no resources.
func (s *fsmSnapshot) Release() {}

func (s *fsmSnapshot) writeTo(w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	e := encoder{w: bw}
	e.raw([]byte(snapMagic))
	e.u32(snapVersion)
	e.u64(s.applied)
	e.u32(b2u(s.recovered))
	// Sorted, so that equal states give equal bytes on every replica.
	slices.SortFunc(s.volumes, func(a, b volSnap) int { return bytes.Compare(a.head.VID[:], b.head.VID[:]) })
	e.u32(uint32(len(s.nodes)))
	for _, id := range slices.Sorted(maps.Keys(s.nodes)) {
		n := s.nodes[id]
		e.str(n.ID)
		e.str(n.RaftAddr)
		e.str(n.APIAddr)
	}
	e.u32(uint32(len(s.volumes)))
	for _, v := range s.volumes {
		e.raw(v.head.VID[:])
		e.u64(uint64(v.head.LSN))
		e.u32(v.head.PageCount)
		e.u64(uint64(v.first))
		e.u32(uint32(len(v.commits)))
		for _, c := range v.commits {
			e.u64(uint64(c.lsn))
			e.u32(c.pageCount)
			e.raw(c.hash[:])
			e.u64(uint64(c.timeUnixMs))
			e.u32(uint32(len(c.pages)))
			for _, p := range c.pages {
				e.u32(uint32(p.Idx))
				e.raw(p.Data)
			}
		}
		e.u32(uint32(len(v.froms)))
		for _, f := range v.froms {
			e.u64(uint64(f))
		}
	}
	e.u32(b2u(s.plan != nil))
	if p := s.plan; p != nil {
		e.u64(p.Round)
		e.u64(uint64(p.TimeUnixMs))
		e.u32(uint32(len(p.Volumes)))
		for _, pv := range p.Volumes {
			e.raw(pv.VID[:])
			e.u64(uint64(pv.From))
			e.u64(uint64(pv.To))
			e.raw(pv.Segment[:])
		}
	}
	e.str(s.clusterID)
	e.u32(uint32(len(s.quarantine)))
	for _, q := range s.quarantine {
		e.raw(q.VID[:])
		e.u64(q.Index)
		e.str(q.Key)
		e.str(q.Reason)
	}
	e.u32(uint32(len(s.revoked)))
	for _, id := range slices.Sorted(maps.Keys(s.revoked)) {
		e.str(id)
		e.u64(uint64(s.revoked[id]))
	}
	writeCheckpoints(&e, s.volumes, s.gc, s.tombstones)
	if e.err != nil {
		return e.err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	_, err := w.Write(sum[:])
	return err
}

// Restore replaces the state with a snapshot. It decodes and verifies the
// whole snapshot first; on any error the current state is left untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = st
	f.notifyLocked()
	return nil
}

func readSnapshot(r io.Reader) (*state, error) {
	crc := crc32.New(castagnoli)
	d := decoder{r: io.TeeReader(bufio.NewReaderSize(r, 1<<16), crc)}
	bad := func(format string, args ...any) (*state, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
	}
	if magic := d.bytes(len(snapMagic)); d.err == nil && string(magic) != snapMagic {
		return bad("magic %q", magic)
	}
	version := d.u32()
	if d.err == nil && (version < 1 || version > snapVersion) {
		return bad("version %d, want 1 to %d", version, snapVersion)
	}
	st := newState()
	st.applied = d.u64()
	st.recovered = true
	if version >= snapHasFlush {
		switch r := d.u32(); {
		case d.err != nil:
		case r > 1:
			return bad("recovered flag %d", r)
		default:
			st.recovered = r == 1
		}
	}
	for n := d.u32(); n > 0 && d.err == nil; n-- {
		ni := NodeInfo{ID: d.str(), RaftAddr: d.str(), APIAddr: d.str()}
		st.nodes[ni.ID] = ni
	}
	for n := d.u32(); n > 0 && d.err == nil; n-- {
		vid, err := volume.IDFromBytes(d.bytes(16))
		if d.err != nil {
			break
		}
		if err != nil {
			return bad("volume id: %v", err)
		}
		v := &volState{pages: map[volume.PageIdx][]pageVersion{}}
		v.head = volume.Snapshot{VID: vid, LSN: volume.LSN(d.u64()), PageCount: d.u32()}
		v.first = volume.LSN(d.u64())
		for nc := d.u32(); nc > 0 && d.err == nil; nc-- {
			rec := &commitRec{lsn: volume.LSN(d.u64()), pageCount: d.u32()}
			copy(rec.hash[:], d.bytes(32))
			rec.timeUnixMs = int64(d.u64())
			want := v.first + volume.LSN(len(v.commits))
			if d.err == nil && rec.lsn != want {
				return bad("volume %s: commit lsn %d, want %d", vid, rec.lsn, want)
			}
			for np := d.u32(); np > 0 && d.err == nil; np-- {
				idx := volume.PageIdx(d.u32())
				data := d.bytes(volume.PageSize)
				if d.err != nil {
					break
				}
				if n := len(rec.pages); !idx.Valid() || uint64(idx) > uint64(rec.pageCount) || (n > 0 && rec.pages[n-1].Idx >= idx) {
					return bad("volume %s lsn %d: page index %d out of order or range", vid, rec.lsn, idx)
				}
				rec.pages = append(rec.pages, volume.PageWrite{Idx: idx, Data: data})
				rec.graft.Add(idx)
				v.pages[idx] = append(v.pages[idx], pageVersion{lsn: rec.lsn, data: data})
				v.bufferBytes += volume.PageSize
			}
			v.commits = append(v.commits, rec)
		}
		if version >= snapHasFlush {
			nf := d.u32()
			if d.err == nil && uint64(nf) > uint64(v.first) {
				return bad("volume %s: %d log records for %d flushed lsns", vid, nf, v.first-1)
			}
			for ; nf > 0 && d.err == nil; nf-- {
				f := volume.LSN(d.u64())
				if d.err == nil && (f == 0 || f >= v.first || (len(v.froms) > 0 && f <= v.froms[len(v.froms)-1])) {
					return bad("volume %s: log record from %d out of order or past the flushed lsn %d", vid, f, v.first-1)
				}
				v.froms = append(v.froms, f)
			}
		}
		if d.err != nil {
			break
		}
		if v.first == 0 {
			return bad("volume %s: first lsn 0", vid)
		}
		if last := v.first + volume.LSN(len(v.commits)) - 1; last != v.head.LSN {
			return bad("volume %s: head %d but commits end at %d", vid, v.head.LSN, last)
		}
		if len(v.commits) > 0 && v.commits[len(v.commits)-1].pageCount != v.head.PageCount {
			return bad("volume %s: head page count %d disagrees with its last commit", vid, v.head.PageCount)
		}
		st.volumes[vid] = v
		st.bufferBytes += v.bufferBytes
	}
	if version >= snapHasFlush && d.err == nil {
		has := d.u32()
		if d.err == nil && has > 1 {
			return bad("flush plan flag %d", has)
		}
		if has == 1 && d.err == nil {
			p := &FlushPlan{Round: d.u64(), TimeUnixMs: int64(d.u64())}
			n := d.u32()
			if d.err == nil && n > uint32(len(st.volumes)) {
				return bad("flush plan of %d volumes, state has %d", n, len(st.volumes))
			}
			for ; n > 0 && d.err == nil; n-- {
				vid, err := volume.IDFromBytes(d.bytes(16))
				pv := PlanVolume{VID: vid, From: volume.LSN(d.u64()), To: volume.LSN(d.u64())}
				copy(pv.Segment[:], d.bytes(16))
				if d.err != nil {
					break
				}
				v := st.volumes[vid]
				if err != nil || v == nil || pv.From != v.first || pv.To < pv.From || pv.To > v.head.LSN {
					return bad("flush plan volume %s range [%d, %d] does not match the state", vid, pv.From, pv.To)
				}
				if k := len(p.Volumes); k > 0 && compareVID(p.Volumes[k-1].VID, vid) >= 0 {
					return bad("flush plan volumes not sorted at %s", vid)
				}
				p.Volumes = append(p.Volumes, pv)
			}
			if d.err == nil && (p.Round == 0 || len(p.Volumes) == 0) {
				return bad("flush plan round %d with %d volumes", p.Round, len(p.Volumes))
			}
			st.plan = p
		}
	}
	if version >= snapHasQuarantine && d.err == nil {
		st.clusterID = d.str()
		var last *volume.ID
		for n := d.u32(); n > 0 && d.err == nil; n-- {
			vid, err := volume.IDFromBytes(d.bytes(16))
			q := Quarantine{VID: vid, Index: d.u64(), Key: d.str(), Reason: d.str()}
			if d.err != nil {
				break
			}
			if err != nil || q.Key == "" || q.Index == 0 || q.Index > st.applied {
				return bad("quarantine of volume %s: bad id, empty key or index %d past applied %d", vid, q.Index, st.applied)
			}
			if last != nil && compareVID(*last, vid) >= 0 {
				return bad("quarantined volumes not sorted at %s", vid)
			}
			last = &vid
			st.quarantine[vid] = q
		}
		if st.plan != nil && d.err == nil {
			for _, pv := range st.plan.Volumes {
				if _, ok := st.quarantine[pv.VID]; ok {
					return bad("flush plan holds quarantined volume %s", pv.VID)
				}
			}
		}
	}
	if version >= snapHasRevoked && d.err == nil {
		last := ""
		for n := d.u32(); n > 0 && d.err == nil; n-- {
			id, exp := d.str(), int64(d.u64())
			if d.err != nil {
				break
			}
			if id == "" || (len(st.revoked) > 0 && id <= last) {
				return bad("revoked token ids empty or not sorted at %q", id)
			}
			if st.revoked == nil {
				st.revoked = map[string]int64{}
			}
			st.revoked[id], last = exp, id
		}
	}
	if version >= snapVersionCheckpoints && d.err == nil {
		if err := readCheckpoints(&d, st); err != nil {
			return nil, err
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, d.err)
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(d.r, sum[:]); err != nil {
		return bad("missing checksum: %v", err)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return bad("checksum %08x, computed %08x", got, want)
	}
	if n, _ := io.Copy(io.Discard, d.r); n != 0 {
		return bad("%d trailing bytes", n)
	}
	return st, nil
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

type encoder struct {
	w   io.Writer
	buf [8]byte
	err error
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u32(v uint32) {
	binary.BigEndian.PutUint32(e.buf[:4], v)
	e.raw(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.BigEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:])
}

func (e *encoder) str(s string) {
	binary.BigEndian.PutUint16(e.buf[:2], uint16(len(s)))
	e.raw(e.buf[:2])
	e.raw([]byte(s))
}

type decoder struct {
	r   io.Reader
	err error
}

// bytes reads n bytes into a fresh slice (page data is kept by the state).
func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = fmt.Errorf("truncated: %w", err)
		return nil
	}
	return b
}

func (d *decoder) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) str() string {
	if b := d.bytes(2); b != nil {
		return string(d.bytes(int(binary.BigEndian.Uint16(b))))
	}
	return ""
}
