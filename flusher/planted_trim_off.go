//go:build !graft_bug_trim_before_upload

package flusher

import (
	"context"

	"github.com/graft-cluster/graft/fsm"
)

// plantedExecute runs a round the broken way in binaries built with the
// build tag graft_bug_trim_before_upload (see planted_trim_on.go) and
// reports that it did; in every other build it does nothing and reports
// false.
func (f *Flusher) plantedExecute(context.Context, *fsm.FlushPlan) (bool, error) { return false, nil }
