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
// ends. A volume whose log cannot be read back (its last record does not
// decode, a key under its log does not parse) is quarantined instead of
// adopted: its reads and commits answer an error naming the object, and
// every other volume is served. Only object-store failures (network, 5xx)
// make Recover fail, to be retried. With store nil there is nothing to
// adopt. Recover is idempotent: a leader that takes over half way adopts
// only what is still missing.
func Recover(ctx context.Context, f *fsm.FSM, store objstore.Store, r *Reader, prop Proposer, log *slog.Logger) error {
	if f.Recovered() {
		return nil
	}
	if store != nil {
		vols, bad, deleted, err := listLogs(ctx, store, log)
		if err != nil {
			return err
		}
		ids := slices.Collect(maps.Keys(vols))
		for vid := range bad {
			if _, ok := vols[vid]; !ok {
				ids = append(ids, vid)
			}
		}
		slices.SortFunc(ids, func(a, b volume.ID) int { return bytes.Compare(a[:], b[:]) })
		for _, vid := range ids {
			if _, q := f.Quarantine(vid); q || f.HasVolume(vid) || deleted[vid] {
				continue
			}
			if key, ok := bad[vid]; ok {
				if err := recoverQuarantine(ctx, prop, log, &ConflictError{VID: vid, Key: key, Reason: "key under the volume's log is not a log record key"}); err != nil {
					return err
				}
				continue
			}
			adopt, err := readAdopt(ctx, r, vid, vols[vid])
			var ce *ConflictError
			switch {
			case errors.As(err, &ce):
				if err := recoverQuarantine(ctx, prop, log, ce); err != nil {
					return err
				}
				continue
			case err != nil:
				return fmt.Errorf("recover volume %s: %w", vid, err)
			}
			if err := proposeAdmin(ctx, prop, fsm.EncodeAdopt(adopt)); err != nil {
				return fmt.Errorf("adopt volume %s: %w", vid, err)
			}
			log.Info("recovered volume from the object store", "vid", vid, "head", adopt.Head.LSN, "page_count", adopt.Head.PageCount, "records", len(adopt.Froms))
		}
	}
	if err := proposeAdmin(ctx, prop, fsm.EncodeRecovered()); err != nil {
		return fmt.Errorf("mark recovery done: %w", err)
	}
	return nil
}

// readAdopt reads a volume's head from its last log record. A record that
// cannot be decoded (or does not match its key) is a *ConflictError; an
// object-store failure is returned as is.
//
// The volume's newest usable checkpoint (one LIST, and a GET per candidate)
// starts its adopted history: only the records after it are adopted.
func readAdopt(ctx context.Context, r *Reader, vid volume.ID, froms []volume.LSN) (*fsm.AdoptCommand, error) {
	ckpt, ck, err := r.newestCheckpoint(ctx, vid)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearch(froms, ckpt+1)
	froms = froms[i:]
	if ckpt > 0 {
		if len(froms) == 0 {
			return &fsm.AdoptCommand{Head: volume.Snapshot{VID: vid, LSN: ckpt, PageCount: ck.Commit.PageCount}, Checkpoint: ckpt}, nil
		}
		if froms[0] != ckpt+1 {
			return nil, &ConflictError{VID: vid, Key: segment.LogKey(vid, froms[0]), Reason: fmt.Sprintf("the log after checkpoint %d starts at %d", ckpt, froms[0])}
		}
	}
	if len(froms) == 0 {
		return nil, &ConflictError{VID: vid, Key: segment.CheckpointPrefix(vid), Reason: "no usable checkpoint and no log record"}
	}
	from := froms[len(froms)-1]
	last, err := r.Record(ctx, vid, from)
	if err != nil {
		var se *StoreError
		if errors.As(err, &se) || ctx.Err() != nil {
			return nil, err
		}
		return nil, &ConflictError{VID: vid, Key: segment.LogKey(vid, from), Reason: "undecodable record: " + err.Error()}
	}
	head := volume.Snapshot{VID: vid, LSN: last.To, PageCount: last.Commits[len(last.Commits)-1].PageCount}
	return &fsm.AdoptCommand{Head: head, Froms: froms, Checkpoint: ckpt}, nil
}

// recoverQuarantine quarantines a volume recovery could not adopt.
func recoverQuarantine(ctx context.Context, prop Proposer, log *slog.Logger, ce *ConflictError) error {
	log.Error("QUARANTINE: recovery cannot read this volume's log in the object store; its reads and commits fail until an operator repairs or removes the object and runs `graft cluster unquarantine VID`",
		"vid", ce.VID, "key", ce.Key, "reason", ce.Reason)
	if err := proposeAdmin(ctx, prop, fsm.EncodeQuarantine(fsm.Quarantine{VID: ce.VID, Key: ce.Key, Reason: ce.Reason})); err != nil {
		return fmt.Errorf("quarantine volume %s: %w", ce.VID, err)
	}
	return nil
}

// listLogs lists every volume's log records: vid -> ascending first LSNs.
// A key under a volume's log that is not a log record key goes into bad
// (vid -> the first such key); a key whose volume ID does not parse is not
// the layout's and is skipped with a warning.
//
// deleted holds the volumes with a deleted marker (segment.DeletedKey): a
// volume deleted by the cluster that wrote the bucket, whose objects GC
// has not removed yet. Recovery does not adopt them.
func listLogs(ctx context.Context, store objstore.Store, log *slog.Logger) (map[volume.ID][]volume.LSN, map[volume.ID]string, map[volume.ID]bool, error) {
	objs, err := store.List(ctx, segment.VolumesPrefix)
	if err != nil {
		return nil, nil, nil, &StoreError{Op: "list volumes", Err: err}
	}
	out := map[volume.ID][]volume.LSN{}
	bad := map[volume.ID]string{}
	deleted := map[volume.ID]bool{}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, "/deleted") {
			if vid, err := segment.ParseVolumeKey(o.Key); err == nil && o.Key == segment.DeletedKey(vid) {
				deleted[vid] = true
				continue
			}
		}
		if strings.Contains(o.Key, "/checkpoints/") {
			if vid, _, err := segment.ParseCheckpointKey(o.Key); err == nil {
				if _, ok := out[vid]; !ok {
					out[vid] = nil // a volume whose log may be all folded into checkpoints
				}
			}
			continue
		}
		if !strings.Contains(o.Key, "/log/") {
			continue
		}
		vid, from, err := segment.ParseLogKey(o.Key)
		if err != nil {
			if v, verr := segment.ParseVolumeKey(o.Key); verr == nil {
				if _, seen := bad[v]; !seen {
					bad[v] = o.Key
				}
			} else {
				log.Warn("object store key is not in the layout; ignored", "key", o.Key, "err", err)
			}
			continue
		}
		out[vid] = append(out[vid], from) // List is sorted, keys sort by LSN
	}
	return out, bad, deleted, nil
}

// CollectOrphans deletes segments that no log record references and that
// are older than OrphanGrace (by the time in their ID), and returns how
// many it deleted. Orphans come from rounds whose log record was found
// already written with another segment; they are rare.
//
// The keep-rule: a segment is kept if the open round names it, if any
// log record in the listing names it, whether or not this cluster's state
// knows the record, or if any checkpoint in the listing names it (segments
// GC kept for their live pages, and compacted segments, which only
// checkpoints name; a compacted segment whose checkpoint was never written
// is an orphan) (a state older than the bucket must not delete what
// readers of the bucket need). A volume whose listing holds a record the
// state does not know (the bucket is ahead of the state), or a record that
// does not decode, is quarantined and none of its segments is deleted; a
// quarantined volume's segments are never deleted.
func (f *Flusher) CollectOrphans(ctx context.Context) (int, error) {
	if f.reader == nil {
		return 0, nil
	}
	objs, err := f.store.List(ctx, segment.VolumesPrefix)
	if err != nil {
		return 0, fmt.Errorf("list volumes: %w", err)
	}
	// The state is read after the listing: a record this cluster wrote
	// before the listing is by now in a volume's history or in the open
	// round, so it is never taken for a stranger's.
	cutoff := f.now().Add(-f.cfg.OrphanGrace)
	keep := map[segment.ID]bool{}
	next := map[volume.ID]volume.LSN{}
	if p := f.fsm.Plan(); p != nil {
		for _, pv := range p.Volumes {
			keep[segment.ID(pv.Segment)] = true
			next[pv.VID] = pv.From
		}
	}
	type orphan struct {
		key string
		sid segment.ID
	}
	logs := map[volume.ID][]string{}
	ckpts := map[volume.ID][]string{}
	old := map[volume.ID][]orphan{}
	var order []volume.ID
	for _, o := range objs {
		vid, err := segment.ParseVolumeKey(o.Key)
		if err != nil {
			continue
		}
		if strings.Contains(o.Key, "/log/") {
			logs[vid] = append(logs[vid], o.Key)
			continue
		}
		if strings.Contains(o.Key, "/checkpoints/") {
			ckpts[vid] = append(ckpts[vid], o.Key)
			continue
		}
		_, sidText, ok := strings.Cut(o.Key, "/segments/")
		if !ok {
			continue
		}
		sid, err := segment.ParseID(sidText)
		if err != nil || !sid.Time().Before(cutoff) {
			continue
		}
		if _, seen := old[vid]; !seen {
			order = append(order, vid)
		}
		old[vid] = append(old[vid], orphan{o.Key, sid})
	}
	deleted := 0
	defer func() { f.m.orphans.Add(float64(deleted)) }()
	inGC := map[volume.ID]bool{}
	if p := f.fsm.GC(); p != nil {
		for _, gv := range p.Volumes {
			inGC[gv.VID] = true
		}
	}
	for _, vid := range order {
		if _, q := f.fsm.Quarantine(vid); q || inGC[vid] {
			continue // a GC round in progress may have deleted records whose segments its base names
		}
		h := f.fsm.History(vid)
		safe := true
		for _, key := range logs[vid] {
			if ce := knownRecord(h, vid, next[vid], key); ce != nil {
				safe = false
				if err := f.quarantine(ctx, ce); err != nil {
					return deleted, err
				}
				break
			}
			_, from, _ := segment.ParseLogKey(key)
			rec, err := f.reader.Record(ctx, vid, from)
			if err != nil {
				var se *StoreError
				if errors.As(err, &se) || ctx.Err() != nil {
					return deleted, err
				}
				safe = false
				if err := f.quarantine(ctx, &ConflictError{VID: vid, Key: key, Reason: "undecodable record: " + err.Error()}); err != nil {
					return deleted, err
				}
				break
			}
			keep[rec.Segment] = true
		}
		if !safe {
			continue
		}
		// Segments named by no record may be named by checkpoints: kept by
		// a GC round for their live pages (their records are gone), or
		// compacted segments, which only checkpoints name. Keep what any
		// listed checkpoint names; an unusable one keeps everything.
		if slices.ContainsFunc(old[vid], func(o orphan) bool { return !keep[o.sid] }) {
			ok, err := f.keepCheckpointed(ctx, vid, ckpts[vid], keep)
			if err != nil {
				return deleted, err
			}
			if !ok {
				continue
			}
		}
		for _, o := range old[vid] {
			if keep[o.sid] {
				continue
			}
			if err := f.store.Delete(ctx, o.key); err != nil {
				return deleted, fmt.Errorf("delete orphan %s: %w", o.key, err)
			}
			f.log.Info("deleted orphan segment", "key", o.key, "age", f.now().Sub(o.sid.Time()).Round(time.Second))
			deleted++
		}
	}
	return deleted, nil
}

// keepCheckpointed adds to keep every segment the listed checkpoints of
// vid name, in every listed generation. It reports false (keep everything) if one is unusable.
func (f *Flusher) keepCheckpointed(ctx context.Context, vid volume.ID, keys []string, keep map[segment.ID]bool) (bool, error) {
	for _, key := range keys {
		_, lsn, gen, err := segment.ParseCheckpointGenKey(key)
		if err != nil {
			return false, nil
		}
		ck, err := f.reader.checkpointAtGen(ctx, vid, lsn, gen)
		if err != nil {
			var bad *badCheckpointError
			if errors.As(err, &bad) {
				return false, nil
			}
			return false, err
		}
		for _, sid := range ck.Segments {
			keep[sid] = true
		}
	}
	return true, nil
}
