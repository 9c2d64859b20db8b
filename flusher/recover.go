package flusher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// Recover runs once in the life of a cluster, on its first leader: it
// adopts every volume whose log records are in the object store (head and
// flushed history, read from the bucket alone), then marks recovery done so
// commits may start. A cluster started with empty Raft state against an
// existing bucket thereby continues every flushed chain where the bucket
// ends. With store nil there is nothing to adopt. Recover is idempotent: a
// leader that takes over half way adopts only what is still missing.
func Recover(ctx context.Context, f *fsm.FSM, store objstore.Store, r *Reader, prop Proposer, log *slog.Logger) error {
	if f.Recovered() {
		return nil
	}
	if store != nil {
		vols, err := listLogs(ctx, store)
		if err != nil {
			return err
		}
		for _, vid := range slices.SortedFunc(maps.Keys(vols), func(a, b volume.ID) int { return bytes.Compare(a[:], b[:]) }) {
			if f.Head(vid).LSN > 0 {
				continue
			}
			froms := vols[vid]
			last, err := r.Record(ctx, vid, froms[len(froms)-1])
			if err != nil {
				return fmt.Errorf("recover volume %s: %w", vid, err)
			}
			head := volume.Snapshot{VID: vid, LSN: last.To, PageCount: last.Commits[len(last.Commits)-1].PageCount}
			resp, err := prop.Propose(ctx, fsm.EncodeAdopt(&fsm.AdoptCommand{Head: head, Froms: froms}))
			if err != nil {
				return fmt.Errorf("adopt volume %s: %w", vid, err)
			}
			if res, ok := resp.(*fsm.AdminResult); !ok || res.Err != nil {
				return fmt.Errorf("adopt volume %s: %v", vid, resp)
			}
			log.Info("recovered volume from the object store", "vid", vid, "head", head.LSN, "page_count", head.PageCount, "records", len(froms))
		}
	}
	resp, err := prop.Propose(ctx, fsm.EncodeRecovered())
	if err != nil {
		return fmt.Errorf("mark recovery done: %w", err)
	}
	if res, ok := resp.(*fsm.AdminResult); !ok || res.Err != nil {
		return fmt.Errorf("mark recovery done: %v", resp)
	}
	return nil
}

// listLogs lists every volume's log records: vid -> ascending first LSNs.
func listLogs(ctx context.Context, store objstore.Store) (map[volume.ID][]volume.LSN, error) {
	objs, err := store.List(ctx, segment.VolumesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := map[volume.ID][]volume.LSN{}
	for _, o := range objs {
		if !strings.Contains(o.Key, "/log/") {
			continue
		}
		vid, from, err := segment.ParseLogKey(o.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrLayout, o.Key, err)
		}
		out[vid] = append(out[vid], from) // List is sorted, keys sort by LSN
	}
	return out, nil
}

// CollectOrphans deletes segments that no log record references and that
// are older than OrphanGrace (by the time in their ID), and returns how
// many it deleted. Orphans come from rounds whose log record was found
// already written with another segment; they are rare.
func (f *Flusher) CollectOrphans(ctx context.Context) (int, error) {
	if f.reader == nil {
		return 0, nil
	}
	objs, err := f.store.List(ctx, segment.VolumesPrefix)
	if err != nil {
		return 0, fmt.Errorf("list volumes: %w", err)
	}
	cutoff := f.now().Add(-f.cfg.OrphanGrace)
	keep := map[segment.ID]bool{}
	if p := f.fsm.Plan(); p != nil {
		for _, pv := range p.Volumes {
			keep[segment.ID(pv.Segment)] = true
		}
	}
	loaded := map[volume.ID]bool{}
	deleted := 0
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Key, segment.VolumesPrefix)
		if !ok {
			continue
		}
		vs, sidText, ok := strings.Cut(rest, "/segments/")
		if !ok {
			continue
		}
		vid, err1 := volume.ParseID(vs)
		sid, err2 := segment.ParseID(sidText)
		if err := errors.Join(err1, err2); err != nil || !sid.Time().Before(cutoff) {
			continue
		}
		if !loaded[vid] {
			h := f.fsm.History(vid)
			for i := range h.Froms {
				from, _ := h.Range(i)
				rec, err := f.reader.Record(ctx, vid, from)
				if err != nil {
					return deleted, err
				}
				keep[rec.Segment] = true
			}
			loaded[vid] = true
		}
		if keep[sid] {
			continue
		}
		if err := f.store.Delete(ctx, o.Key); err != nil {
			return deleted, fmt.Errorf("delete orphan %s: %w", o.Key, err)
		}
		f.log.Info("deleted orphan segment", "key", o.Key, "age", time.Since(sid.Time()).Round(time.Second))
		deleted++
	}
	f.m.orphans.Add(float64(deleted))
	return deleted, nil
}
