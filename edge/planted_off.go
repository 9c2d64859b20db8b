//go:build !graft_bug_edge_cache_by_index

package edge

import "github.com/graft-cluster/graft/volume"

// plantedKeyVer is the identity except in binaries built with the build
// tag graft_bug_edge_cache_by_index: a deliberately planted bug (the page
// cache is keyed by (vid, idx) only, so a cached snapshot is served the
// bytes of whatever version of the page was fetched last) that the
// consistency suite must catch (graft jepsen --edge, checker page-reads).
// Never set in a real build.
func plantedKeyVer(ver volume.LSN) volume.LSN { return ver }
