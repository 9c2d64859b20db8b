package fsm

import (
	"fmt"

	"github.com/graft-cluster/graft/volume"
)

// snapVersionCheckpoints is the snapshot version that added the checkpoint
// section. All handling of it is in this file.
//
//	checkpoints u32 | per volume with a checkpoint or flushed bytes since
//	    none, sorted by vid: vid (16) | checkpoint u64 | since_bytes u64
//
// The section comes after the quarantined volumes. Older snapshots restore
// with no checkpoint: every volume's history is its whole froms list, as
// before.
const snapVersionCheckpoints = 4

// writeCheckpoints appends the checkpoint section; vols are sorted by vid.
func writeCheckpoints(e *encoder, vols []volSnap) {
	n := 0
	for _, v := range vols {
		if v.checkpoint > 0 || v.sinceBytes > 0 {
			n++
		}
	}
	e.u32(uint32(n))
	for _, v := range vols {
		if v.checkpoint > 0 || v.sinceBytes > 0 {
			e.raw(v.head.VID[:])
			e.u64(uint64(v.checkpoint))
			e.u64(v.sinceBytes)
		}
	}
}

// readCheckpoints reads the checkpoint section into st and checks it
// against the volumes' histories.
func readCheckpoints(d *decoder, st *state) error {
	var last *volume.ID
	for n := d.u32(); n > 0 && d.err == nil; n-- {
		vid, err := volume.IDFromBytes(d.bytes(16))
		ckpt, since := volume.LSN(d.u64()), d.u64()
		if d.err != nil {
			break
		}
		v := st.volumes[vid]
		switch {
		case err != nil || v == nil:
			return fmt.Errorf("%w: checkpoint of unknown volume %s", ErrBadSnapshot, vid)
		case last != nil && compareVID(*last, vid) >= 0:
			return fmt.Errorf("%w: checkpoints not sorted at %s", ErrBadSnapshot, vid)
		case ckpt > v.first-1 || (len(v.froms) > 0 && ckpt > 0 && v.froms[0] != ckpt+1) || (len(v.froms) == 0 && ckpt > 0 && ckpt != v.first-1):
			return fmt.Errorf("%w: volume %s: checkpoint %d does not fit its history (flushed %d, %d records)", ErrBadSnapshot, vid, ckpt, v.first-1, len(v.froms))
		}
		last = &vid
		v.checkpoint, v.sinceBytes = ckpt, since
	}
	return nil
}
