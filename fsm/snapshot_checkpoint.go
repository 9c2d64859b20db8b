package fsm

import (
	"fmt"

	"github.com/graft-cluster/graft/volume"
)

// snapVersionCheckpoints is the snapshot version that added the checkpoint
// section. All handling of it is in this file.
//
//	checkpoints u32 | per volume with a checkpoint, flushed bytes since or a
//	    horizon, sorted by vid: vid (16) | checkpoint u64 | since_bytes u64
//	    | horizon u64
//	| gc u32 (0 or 1) | if 1: round u64 | time_unix_ms i64 | volumes u32
//	    | per volume: vid (16) | horizon u64 | base u64
//	| tombstones u32 | per deleted volume, sorted by vid: vid (16) | index u64
//	    | time_unix_ms i64 | purged u32 (0 or 1)
//
// The section comes after the revoked tokens (version 4). Older snapshots restore
// with no checkpoint: every volume's history is its whole froms list, as
// before.
const snapVersionCheckpoints = 5

// writeCheckpoints appends the checkpoint section; vols are sorted by vid.
func writeCheckpoints(e *encoder, vols []volSnap, gc *GCPlan, tombs []Tombstone) {
	n := 0
	for _, v := range vols {
		if v.checkpoint > 0 || v.sinceBytes > 0 || v.horizon > 0 {
			n++
		}
	}
	e.u32(uint32(n))
	for _, v := range vols {
		if v.checkpoint > 0 || v.sinceBytes > 0 || v.horizon > 0 {
			e.raw(v.head.VID[:])
			e.u64(uint64(v.checkpoint))
			e.u64(v.sinceBytes)
			e.u64(uint64(v.horizon))
		}
	}
	e.u32(b2u(gc != nil))
	if gc != nil {
		e.u64(gc.Round)
		e.u64(uint64(gc.TimeUnixMs))
		e.u32(uint32(len(gc.Volumes)))
		for _, gv := range gc.Volumes {
			e.raw(gv.VID[:])
			e.u64(uint64(gv.Horizon))
			e.u64(uint64(gv.Base))
		}
	}
	e.u32(uint32(len(tombs)))
	for _, t := range tombs {
		e.raw(t.VID[:])
		e.u64(t.Index)
		e.u64(uint64(t.TimeUnixMs))
		e.u32(b2u(t.Purged))
	}
}

// readCheckpoints reads the checkpoint section into st and checks it
// against the volumes' histories.
func readCheckpoints(d *decoder, st *state) error {
	var last *volume.ID
	for n := d.u32(); n > 0 && d.err == nil; n-- {
		vid, err := volume.IDFromBytes(d.bytes(16))
		ckpt, since, horizon := volume.LSN(d.u64()), d.u64(), volume.LSN(d.u64())
		if d.err != nil {
			break
		}
		v := st.volumes[vid]
		switch {
		case err != nil || v == nil:
			return fmt.Errorf("%w: checkpoint of unknown volume %s", ErrBadSnapshot, vid)
		case last != nil && compareVID(*last, vid) >= 0:
			return fmt.Errorf("%w: checkpoints not sorted at %s", ErrBadSnapshot, vid)
		case horizon > ckpt:
			return fmt.Errorf("%w: volume %s: horizon %d above checkpoint %d", ErrBadSnapshot, vid, horizon, ckpt)
		case ckpt > v.first-1 || (len(v.froms) > 0 && ckpt > 0 && v.froms[0] != ckpt+1) || (len(v.froms) == 0 && ckpt > 0 && ckpt != v.first-1):
			return fmt.Errorf("%w: volume %s: checkpoint %d does not fit its history (flushed %d, %d records)", ErrBadSnapshot, vid, ckpt, v.first-1, len(v.froms))
		}
		last = &vid
		v.checkpoint, v.sinceBytes, v.horizon = ckpt, since, horizon
	}
	if has := d.u32(); d.err == nil && has > 1 {
		return fmt.Errorf("%w: gc flag %d", ErrBadSnapshot, has)
	} else if has == 1 && d.err == nil {
		p := &GCPlan{Round: d.u64(), TimeUnixMs: int64(d.u64())}
		n := d.u32()
		if d.err == nil && (n == 0 || n > uint32(len(st.volumes))) {
			return fmt.Errorf("%w: gc round of %d volumes, state has %d", ErrBadSnapshot, n, len(st.volumes))
		}
		for ; n > 0 && d.err == nil; n-- {
			vid, err := volume.IDFromBytes(d.bytes(16))
			gv := GCVolume{VID: vid, Horizon: volume.LSN(d.u64()), Base: volume.LSN(d.u64())}
			if d.err != nil {
				break
			}
			if k := len(p.Volumes); err != nil || st.volumes[vid] == nil || gv.Base > gv.Horizon || (k > 0 && compareVID(p.Volumes[k-1].VID, vid) >= 0) {
				return fmt.Errorf("%w: gc round volume %s does not match the state", ErrBadSnapshot, vid)
			}
			p.Volumes = append(p.Volumes, gv)
		}
		if d.err == nil && (p.Round == 0 || p.Round > st.applied) {
			return fmt.Errorf("%w: gc round %d past applied %d", ErrBadSnapshot, p.Round, st.applied)
		}
		st.gc = p
	}
	last = nil
	for n := d.u32(); n > 0 && d.err == nil; n-- {
		vid, err := volume.IDFromBytes(d.bytes(16))
		t := Tombstone{VID: vid, Index: d.u64(), TimeUnixMs: int64(d.u64())}
		purged := d.u32()
		if d.err != nil {
			break
		}
		if err != nil || purged > 1 || t.Index == 0 || t.Index > st.applied || st.volumes[vid] != nil || (last != nil && compareVID(*last, vid) >= 0) {
			return fmt.Errorf("%w: tombstone of %s: bad id, flag, index, order, or the volume still has state", ErrBadSnapshot, vid)
		}
		t.Purged = purged == 1
		last = &vid
		st.deleted[vid] = t
	}
	return nil
}
