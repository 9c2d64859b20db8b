//go:build graft_bug_trim_before_upload

package flusher

import (
	"context"
	"fmt"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

// plantedExecute is a deliberately planted bug, built only with the tag
// graft_bug_trim_before_upload: the round's end is committed (trimming the
// buffer on every replica) before its segments and log records are
// uploaded, so an upload that then fails, or a leader that dies first,
// loses the round's commits. THIS BUILD IS BROKEN ON PURPOSE, to prove the
// consistency suite detects it. Never set in a real build.
func (f *Flusher) plantedExecute(ctx context.Context, p *fsm.FlushPlan) (bool, error) {
	commits := make(map[volume.ID][]fsm.BufferedCommit, len(p.Volumes))
	for _, pv := range p.Volumes {
		cs, err := f.fsm.Buffered(pv.VID, pv.From, pv.To)
		if err != nil {
			return true, fmt.Errorf("volume %s: %w", pv.VID, err)
		}
		commits[pv.VID] = cs
	}
	resp, err := f.prop.Propose(ctx, fsm.EncodeFlushDone(p.Round))
	if err != nil {
		f.m.errors.Inc()
		return true, fmt.Errorf("propose end of flush round %d: %w", p.Round, err)
	}
	if res, ok := resp.(*fsm.AdminResult); !ok || res.Err != nil {
		f.m.errors.Inc()
		return true, fmt.Errorf("end of flush round %d: %v", p.Round, resp)
	}
	for _, pv := range p.Volumes {
		if _, err := f.writeVolume(ctx, pv, commits[pv.VID]); err != nil {
			f.m.errors.Inc()
			return true, fmt.Errorf("flush round %d: %w", p.Round, err)
		}
	}
	f.m.rounds.Inc()
	return true, nil
}
