package checker_test

import (
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

const qKey = "volumes/q/log/00000000000000000004"

// qEvent is one quarantine-nemesis operation: its invocation and
// completion.
type qEvent struct{ inv, done history.Op }

// quarantineWindow is a window in which everything held: volume q
// quarantined on three nodes, a refused probe, w flushed, healed, resumed.
func quarantineWindow() []qEvent {
	st := func(node int) qEvent {
		return qEvent{
			history.Op{F: history.FQuarantineStatus, Node: node, VID: "q", Key: qKey},
			history.Op{Type: history.OK, Key: qKey},
		}
	}
	return []qEvent{
		{history.Op{F: history.FQuarantinePlant, VID: "q", LSN: 4, Key: qKey}, history.Op{Type: history.OK, LSN: 4, Key: qKey}},
		st(0), st(1), st(2),
		{history.Op{F: history.FQuarantineProbe, VID: "q", Base: 4, Hash: "probe", Key: qKey},
			history.Op{Type: history.Fail, Error: "failed_precondition: volume q is quarantined: object " + qKey}},
		{history.Op{F: "read", VID: "q"}, history.Op{Type: history.OK, LSN: 4, Hash: "d"}},
		{history.Op{F: history.FQuarantineFlush, VID: "w", Base: 1, LSN: 2}, history.Op{Type: history.OK, LSN: 2, Head: 2}},
		{history.Op{F: history.FQuarantineHeal, VID: "q", Key: qKey}, history.Op{Type: history.OK}},
		{history.Op{F: history.FQuarantineResume, VID: "q", Base: 3, LSN: 4}, history.Op{Type: history.OK, Head: 4}},
	}
}

// qHistory turns events into a history, each operation its own process,
// one after the other.
func qHistory(es []qEvent) []history.Op {
	var evs []ev
	for i, e := range es {
		inv, done := e.inv, e.done
		inv.Process, done.Process = 100+i, 100+i
		inv.Type = history.Invoke
		done.F, done.VID, done.Node = inv.F, inv.VID, inv.Node
		evs = append(evs, ev{10 * (2 * i), inv}, ev{10 * (2*i + 1), done})
	}
	return hist(evs...)
}

func TestQuarantine(t *testing.T) {
	finals := []map[string][]checker.Entry{{"q": entries("a", "b", "c", "d"), "w": entries("x", "y")}}
	with := func(f func([]qEvent) []qEvent) []qEvent { return f(quarantineWindow()) }
	for _, tc := range []struct {
		name    string
		events  []qEvent
		want    checker.Verdict
		mention []string
	}{
		{"every check held", quarantineWindow(), checker.Valid, nil},
		{"no window", nil, checker.Unknown, nil},
		{"a node never listed it", with(func(es []qEvent) []qEvent {
			es[2].done = history.Op{Type: history.Fail, Error: "not listed as quarantined after 20s; status lists none"}
			return es
		}), checker.Invalid, []string{"vid q", "node 1", "did not list", qKey}},
		{"a node names another key", with(func(es []qEvent) []qEvent {
			es[3].done.Key = "volumes/q/log/00000000000000000009"
			return es
		}), checker.Invalid, []string{"node 2", "00000000000000000009"}},
		{"a node could not be asked", with(func(es []qEvent) []qEvent {
			es[3].done = history.Op{Type: history.Info, Error: "connection refused"}
			return es
		}), checker.Unknown, nil},
		{"the probe was accepted", with(func(es []qEvent) []qEvent {
			es[4].done = history.Op{Type: history.OK, LSN: 5}
			return es
		}), checker.Invalid, []string{"vid q", "accepted at lsn 5"}},
		{"the probe was refused without the key", with(func(es []qEvent) []qEvent {
			es[4].done.Error = "resource_exhausted: buffer full"
			return es
		}), checker.Invalid, []string{"without naming", qKey}},
		{"the refused probe is in a chain", with(func(es []qEvent) []qEvent {
			es[4].inv.Hash = "c"
			return es
		}), checker.Invalid, []string{"in a final chain"}},
		{"a read of the quarantined volume was refused", with(func(es []qEvent) []qEvent {
			es[5].done = history.Op{Type: history.Fail, Error: "failed_precondition: volume q is quarantined"}
			return es
		}), checker.Invalid, []string{"vid q", "read while it was quarantined"}},
		{"another volume did not flush", with(func(es []qEvent) []qEvent {
			es[6].done = history.Op{Type: history.Fail, LSN: 2, Head: 1, Error: "the bucket stayed at lsn 1"}
			return es
		}), checker.Invalid, []string{"vid w", "did not reach the bucket", "while q was quarantined"}},
		{"no other volume had anything to flush", with(func(es []qEvent) []qEvent {
			return append(es[:6:6], es[7:]...)
		}), checker.Unknown, nil},
		{"the quarantine was not lifted", with(func(es []qEvent) []qEvent {
			es[7].done = history.Op{Type: history.Fail, Error: "unquarantine: failed_precondition"}
			return es
		}), checker.Invalid, []string{"could not be lifted"}},
		{"flushing did not resume", with(func(es []qEvent) []qEvent {
			es[8].done = history.Op{Type: history.Fail, Head: 3, Error: "the bucket stayed at lsn 3"}
			return es
		}), checker.Invalid, []string{"vid q", "after the quarantine was lifted"}},
		{"a void plant and a good window", append([]qEvent{
			{history.Op{F: history.FQuarantinePlant, VID: "q", LSN: 4, Key: qKey}, history.Op{Type: history.Info, Error: "store unreachable"}},
		}, quarantineWindow()...), checker.Valid, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantVerdict(t, checker.Quarantine(qHistory(tc.events), finals), tc.want, tc.mention...)
		})
	}
}
