package jepsen

import (
	"context"

	"github.com/graft-cluster/graft/jepsen/proxy"
	"github.com/graft-cluster/graft/objstore/fakes3"
)

// The object-store faults of nemesis.S3Faults.

func (a adapter) S3Reset() error { return a.c.S3(proxy.Reject) }

func (a adapter) S3Rate(bytesPerSecond int64) error { return a.c.S3Rate(bytesPerSecond) }

func (a adapter) S3Errors(ctx context.Context, rate float64, status int, match string) error {
	return a.c.S3Errors(ctx, fakes3.Faults{Rate: rate, Status: status, Match: match})
}
