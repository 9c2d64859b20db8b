//go:build graft_bug_edge_cache_by_index

package edge

import "github.com/graft-cluster/graft/volume"

// plantedKeyVer: see planted_off.go. THIS BUILD IS BROKEN ON PURPOSE, to
// prove the consistency suite detects an edge serving another version's
// bytes: every version of a page shares one cache entry.
func plantedKeyVer(volume.LSN) volume.LSN { return 0 }
