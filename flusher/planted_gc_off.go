//go:build !graft_bug_gc_extra_segment

package flusher

import (
	"context"

	"github.com/graft-cluster/graft/volume"
)

// plantedGCExtra deletes one segment too many in binaries built with the
// build tag graft_bug_gc_extra_segment (see planted_gc_on.go); in every
// other build it does nothing.
func (f *Flusher) plantedGCExtra(context.Context, volume.ID, volume.LSN, func(string) error) error {
	return nil
}
