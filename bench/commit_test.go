package bench_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/graft-cluster/graft/bench"
	"github.com/graft-cluster/graft/cluster/clustertest"
)

func TestCommitConfig_Validate(t *testing.T) {
	t.Parallel()
	if err := bench.DefaultCommitConfig().Validate(); !errors.Is(err, bench.ErrNoClient) {
		t.Errorf("Validate without client = %v, want ErrNoClient", err)
	}
	if _, err := bench.RunCommit(context.Background(), bench.DefaultCommitConfig()); !errors.Is(err, bench.ErrNoClient) {
		t.Errorf("RunCommit without client = %v, want ErrNoClient", err)
	}
}

func TestRunCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node in-process cluster")
	}
	t.Parallel()
	c := clustertest.Start(t, 3)
	cfg := bench.DefaultCommitConfig()
	cfg.Client = c.Client()
	cfg.Clients = 2
	cfg.Pages = 2
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 300 * time.Millisecond
	for _, bad := range []func(*bench.CommitConfig){
		func(c *bench.CommitConfig) { c.Clients = 0 },
		func(c *bench.CommitConfig) { c.Pages = 0 },
		func(c *bench.CommitConfig) { c.Duration = 0 },
		func(c *bench.CommitConfig) { c.Warmup = -1 },
	} {
		b := cfg
		bad(&b)
		if err := b.Validate(); !errors.Is(err, bench.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidArgument", b, err)
		}
	}

	res, err := bench.RunCommit(context.Background(), cfg)
	if err != nil {
		t.Fatalf("RunCommit: %v", err)
	}
	if res.Clients != 2 || res.Pages != 2 || res.Latency.Count == 0 || res.Latency.Errors != 0 ||
		res.OpsPerSec <= 0 || res.Elapsed < cfg.Duration {
		t.Errorf("RunCommit = %+v, want commits from 2 clients measured over >= %s", res, cfg.Duration)
	}
}
