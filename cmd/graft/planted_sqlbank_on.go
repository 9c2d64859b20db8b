//go:build graft_bug_sqlbank_half_transfer

package main

// plantedHalfTransfer: the sqlite-bank client commits only the debit of a
// transfer (money vanishes), for the consistency suite to catch.
const plantedHalfTransfer = true
