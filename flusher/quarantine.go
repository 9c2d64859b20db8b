package flusher

import (
	"context"
	"fmt"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Unquarantine lifts a volume's quarantine, on the leader, once an
// operator has fixed or removed the object it names. A volume the state
// holds just resumes: its next round lists its log again and writes from
// its flushed watermark (a conflict quarantines it again). A volume
// quarantined by recovery before its head was known is read from the
// bucket again, as recovery would: adopted from its last log record (or,
// when its log is now empty, left to start afresh), then released. If its
// log still cannot be read, the quarantine stays and the *ConflictError
// says why.
func Unquarantine(ctx context.Context, f *fsm.FSM, store objstore.Store, r *Reader, prop Proposer, vid volume.ID) error {
	if _, ok := f.Quarantine(vid); !ok {
		return fmt.Errorf("%w: volume %s", ErrNotQuarantined, vid)
	}
	if !f.HasVolume(vid) && store != nil {
		objs, err := store.List(ctx, segment.LogPrefix(vid))
		if err != nil {
			return &StoreError{Op: "list log of " + vid.String(), Err: err}
		}
		var froms []volume.LSN
		for _, o := range objs {
			v, from, err := segment.ParseLogKey(o.Key)
			if err != nil || v != vid {
				return &ConflictError{VID: vid, Key: o.Key, Reason: "key under the volume's log is not a log record key (still)"}
			}
			froms = append(froms, from)
		}
		if len(froms) > 0 {
			adopt, err := readAdopt(ctx, r, vid, froms)
			if err != nil {
				return err
			}
			if err := proposeAdmin(ctx, prop, fsm.EncodeAdopt(adopt)); err != nil {
				return fmt.Errorf("adopt volume %s: %w", vid, err)
			}
		}
	}
	if err := proposeAdmin(ctx, prop, fsm.EncodeUnquarantine(vid)); err != nil {
		return fmt.Errorf("unquarantine volume %s: %w", vid, err)
	}
	return nil
}
