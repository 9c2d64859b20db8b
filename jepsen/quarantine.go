package jepsen

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/harness"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/jepsen/nemesis"
	"github.com/graft-cluster/graft/jepsen/workload"
	"github.com/graft-cluster/graft/volume"
)

// quarantineEnv returns what the quarantine nemesis acts with, and a
// function that releases it; nil (and a no-op) unless opts schedules that
// nemesis. The nemesis reaches the nodes and the object store at their
// real addresses: it plays an operator (and a second writer on the
// prefix), not a client behind the faults.
func quarantineEnv(ctx context.Context, c *harness.Cluster, rec *history.Recorder, w workload.Workload, opts Options, log *slog.Logger) (*nemesis.QuarantineEnv, func(), error) {
	if !slices.Contains(opts.Nemeses, "quarantine") {
		return nil, func() {}, nil
	}
	store, err := c.OpenObjectStore(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("quarantine nemesis: %w", err)
	}
	cl, err := client.New(c.Endpoints(), append([]client.Option{client.WithAttempts(5), client.WithAttemptTimeout(2 * time.Second), client.WithBackoff(50 * time.Millisecond)}, c.ClientOptions()...)...)
	if err != nil {
		_ = store.Close()
		return nil, nil, fmt.Errorf("quarantine nemesis: %w", err)
	}
	env := &nemesis.QuarantineEnv{
		Cluster: c, Store: store, Client: cl, Rec: rec,
		Workload: w.VIDs(), Own: nemesis.OwnVolumes(opts.Seed), Seed: opts.Seed,
		Log: log.With("component", "nemesis", "nemesis", "quarantine"),
	}
	return env, func() { _ = store.Close() }, nil
}

// checkedVIDs returns the workload's volumes and every other volume the
// history names (the quarantine nemesis commits to volumes of its own), in
// that order: the final reads and the bucket cover all of them.
func checkedVIDs(vids []volume.ID, ops []history.Op) []volume.ID {
	out := slices.Clone(vids)
	seen := map[string]bool{}
	for _, v := range vids {
		seen[v.String()] = true
	}
	for _, op := range ops {
		if op.VID == "" || seen[op.VID] {
			continue
		}
		seen[op.VID] = true
		if v, err := volume.ParseID(op.VID); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// quarantineResult runs the quarantine checker when the quarantine
// nemesis was scheduled.
func quarantineResult(ops []history.Op, finals []map[string][]checker.Entry, opts Options) (checker.Result, bool) {
	if !slices.Contains(opts.Nemeses, "quarantine") {
		return checker.Result{}, false
	}
	return checker.Quarantine(ops, finals), true
}
