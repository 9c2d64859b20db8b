//go:build !graft_bug_delta_omit_last

package flusher

import "github.com/graft-cluster/graft/segment"

// plantedDeltaSkip leaves a page version out of a round's delta in binaries
// built with graft_bug_delta_omit_last (planted_delta_on.go); never here.
func plantedDeltaSkip(*segment.Record, segment.Entry) bool { return false }
