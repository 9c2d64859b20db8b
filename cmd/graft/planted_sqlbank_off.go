//go:build !graft_bug_sqlbank_half_transfer

package main

// plantedHalfTransfer is the planted bug graft_bug_sqlbank_half_transfer
// (jepsen.PlantedBugs): off in every normal build.
const plantedHalfTransfer = false
