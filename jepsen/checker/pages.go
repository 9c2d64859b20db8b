package checker

import (
	"errors"

	"github.com/graft-cluster/graft/jepsen/history"
)

// ErrUnreadable marks a PageCheck error that says nothing about the data:
// the read could not be made (the cluster unavailable, the deadline
// passed). Such commits make the verdict unknown, not invalid. An answer
// that the page is missing or different is an anomaly, never this.
var ErrUnreadable = errors.New("could not read")

// ErrBelowHorizon marks a PageCheck error that says the commit is below
// its volume's retention horizon (the read answered out_of_range naming an
// oldest readable LSN above it): correct for a cluster with retention, so
// counted, not an anomaly.
var ErrBelowHorizon = errors.New("below the retention horizon")

// Unread is a final read of node Node (its chains) that returned no data,
// and why.
type Unread struct {
	Node int
	Err  error
}

// Gone reports whether the read's error is an answer about the data (it
// is gone or broken), not a read that could not be made: any error that
// does not wrap ErrUnreadable.
func (u Unread) Gone() bool { return u.Err != nil && !errors.Is(u.Err, ErrUnreadable) }

// PageCheck verifies the bytes a commit wrote: it reads pages of volume
// vid at lsn and compares them with what the commit's seed generates,
// returning an error describing the first mismatch.
type PageCheck func(vid string, lsn uint64, seed uint64, pages []uint32) error

// Pages calls check for every acknowledged commit (F "commit", ok) that
// wrote pages, and reports each error as an anomaly, except errors that
// wrap ErrUnreadable: when there are such and no anomaly, the result is
// unknown.
func Pages(ops []history.Op, check PageCheck) Result {
	var an anomalies
	checked, unreadable, below := 0, 0, 0
	var firstUnreadable string
	for _, p := range history.Pairs(ops) {
		inv, done := p[0], p[1]
		if inv.F != "commit" || done.Type != history.OK || len(inv.Pages) == 0 {
			continue
		}
		checked++
		err := check(inv.VID, done.LSN, inv.Seed, inv.Pages)
		if errors.Is(err, ErrBelowHorizon) {
			below++
			continue
		}
		if errors.Is(err, ErrUnreadable) {
			if unreadable == 0 {
				firstUnreadable = err.Error()
			}
			unreadable++
			continue
		}
		if err != nil {
			an.addf("vid %s lsn %d: pages %v of acked commit %s (seed %d): %s", inv.VID, done.LSN, inv.Pages, opRef(p), inv.Seed, err.Error())
		}
	}
	details := map[string]any{"checked": checked, "unreadable": unreadable}
	if below > 0 {
		details["below_horizon"] = below
	}
	if unreadable == 0 {
		return an.result("pages", Valid, details)
	}
	details["first_unreadable"] = firstUnreadable
	return an.result("pages", Unknown, details)
}
