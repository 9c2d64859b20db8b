//go:build !graft_bug_quarantine_blocks_all

package flusher

// PlantedQuarantineBlocksAll is true only in binaries built with the build
// tag graft_bug_quarantine_blocks_all: a deliberately planted bug (a
// volume whose log conflicts is not quarantined; its error fails the whole
// round, which is retried for ever, so every volume's flushing stops: the
// behaviour before quarantine) that the consistency suite's quarantine
// nemesis must catch. Never set in a real build.
const PlantedQuarantineBlocksAll = false
