//go:build graft_bug_delta_omit_last

package flusher

import "github.com/graft-cluster/graft/segment"

// plantedDeltaSkip is a deliberately planted bug, built only with the tag
// graft_bug_delta_omit_last: a round's delta omits the pages of the round's
// last commit, so a head read through the delta answers the previous
// version of those pages (or the base checkpoint's). The bucket checker
// (every delta against the chain) and the delta read tests must catch it.
func plantedDeltaSkip(rec *segment.Record, e segment.Entry) bool { return e.LSN == rec.To }
