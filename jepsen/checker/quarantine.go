package checker

import (
	"fmt"
	"strings"
	"time"

	"github.com/graft-cluster/graft/jepsen/history"
)

// qWindow is one quarantine window as the nemesis recorded it.
type qWindow struct {
	plant      [2]history.Op
	start, end time.Duration // plant invoked .. heal completed (end 0: never)

	statusOK, statusNodes, probesRefused, othersFlushed int
	healed, resumed                                     bool
	unverified                                          []string
}

// Quarantine checks what the quarantine nemesis recorded
// (history.FQuarantine* events), window by window; a window starts with a
// successful plant of a conflicting object at a volume's next log key:
//
//   - every node listed the volume as quarantined, naming the planted key;
//   - a commit to it on its head was refused with failed_precondition
//     naming the key, and is in no final chain (finals as for Chain);
//   - no read of it was refused with failed_precondition while it was
//     quarantined (the cluster still holds its state);
//   - every other volume with buffered commits had them in the bucket
//     within the nemesis's wait, while the volume was quarantined;
//   - the heal (object removed, quarantine lifted) succeeded, and the
//     volume's buffered commits reached the bucket afterwards.
//
// Anything observed to the contrary is an anomaly. A window is verified
// when every one of these was observed, not merely not contradicted (a
// node that could not be asked leaves it unverified). Valid needs at least
// one verified window and no anomaly; without a verified window the
// result is Unknown.
func Quarantine(ops []history.Op, finals []map[string][]Entry) Result {
	var an anomalies
	inChain := map[string]map[string]bool{} // vid -> hash -> in some node's final chain
	for _, f := range finals {
		for vid, chain := range f {
			if inChain[vid] == nil {
				inChain[vid] = map[string]bool{}
			}
			for _, e := range chain {
				inChain[vid][e.Hash] = true
			}
		}
	}
	pairs := history.Pairs(ops)
	var windows []*qWindow
	var cur *qWindow
	voidPlants := 0
	for _, p := range pairs {
		inv, done := p[0], p[1]
		if inv.F == history.FQuarantinePlant {
			switch done.Type {
			case history.OK:
				cur = &qWindow{plant: p, start: inv.Time}
				windows = append(windows, cur)
			case history.Info:
				voidPlants++
			}
			continue
		}
		if cur == nil || !strings.HasPrefix(inv.F, "quarantine-") {
			continue
		}
		vid, key := cur.plant[0].VID, cur.plant[1].Key
		switch inv.F {
		case history.FQuarantineStatus:
			cur.statusNodes++
			switch {
			case done.Type == history.OK && done.Key == key:
				cur.statusOK++
			case done.Type == history.OK:
				an.addf("vid %s: node %d lists it as quarantined for object %s, but the conflicting object is %s (%s)", vid, inv.Node, done.Key, key, opRef(p))
			case done.Type == history.Fail:
				an.addf("vid %s: node %d did not list it as quarantined after a conflicting object was put at %s: %s (%s)", vid, inv.Node, key, done.Error, opRef(p))
			default:
				cur.unverified = append(cur.unverified, fmt.Sprintf("node %d not asked: %s", inv.Node, done.Error))
			}
		case history.FQuarantineProbe:
			switch {
			case done.Type == history.OK:
				an.addf("vid %s: a commit on its head %d was accepted at lsn %d while it was quarantined for %s (%s)", vid, inv.Base, done.LSN, key, opRef(p))
			case done.Type == history.Fail && (!strings.Contains(done.Error, "failed_precondition") || !strings.Contains(done.Error, key)):
				an.addf("vid %s: a commit while it was quarantined was refused without naming %s as failed_precondition: %s (%s)", vid, key, done.Error, opRef(p))
			case done.Type == history.Fail:
				cur.probesRefused++
			default:
				cur.unverified = append(cur.unverified, "probe commit: no answer: "+done.Error)
			}
			if inv.Hash != "" && inChain[inv.VID][inv.Hash] {
				an.addf("vid %s: the commit sent while it was quarantined (hash %s) is in a final chain (%s)", vid, short(inv.Hash), opRef(p))
			}
		case history.FQuarantineFlush:
			switch done.Type {
			case history.OK:
				cur.othersFlushed++
			case history.Fail:
				an.addf("vid %s: its buffered commits up to lsn %d did not reach the bucket (stayed at %d) while %s was quarantined: one volume's conflict stopped another's flushing: %s (%s)", inv.VID, inv.LSN, done.Head, vid, done.Error, opRef(p))
			default:
				cur.unverified = append(cur.unverified, fmt.Sprintf("flush of %s: %s", inv.VID, done.Error))
			}
		case history.FQuarantineHeal:
			cur.end = max(done.Time, inv.Time)
			switch done.Type {
			case history.OK:
				cur.healed = true
			case history.Fail:
				an.addf("vid %s: the quarantine could not be lifted after %s was removed: %s (%s)", vid, key, done.Error, opRef(p))
			default:
				cur.unverified = append(cur.unverified, "heal: "+done.Error)
			}
		case history.FQuarantineResume:
			switch done.Type {
			case history.OK:
				cur.resumed = true
			case history.Fail:
				an.addf("vid %s: after the quarantine was lifted its buffered commits up to lsn %d did not reach the bucket (stayed at %d): %s (%s)", vid, inv.LSN, done.Head, done.Error, opRef(p))
			default:
				cur.unverified = append(cur.unverified, "resume: "+done.Error)
			}
		}
	}

	// Reads of a quarantined volume keep working.
	refusedReads := 0
	for _, p := range pairs {
		inv, done := p[0], p[1]
		if inv.F != "read" || done.Type == history.OK || !strings.Contains(done.Error, "failed_precondition") {
			continue
		}
		for _, w := range windows {
			if inv.VID == w.plant[0].VID && inv.Time >= w.start && (w.end == 0 || inv.Time <= w.end) {
				refusedReads++
				an.addf("vid %s: a read while it was quarantined (its state held) was refused: %s (%s)", inv.VID, done.Error, opRef(p))
				break
			}
		}
	}

	verified := 0
	var notes []string
	for i, w := range windows {
		ok := w.statusNodes > 0 && w.statusOK == w.statusNodes && w.probesRefused > 0 && w.othersFlushed > 0 && w.healed && w.resumed
		if ok {
			verified++
			continue
		}
		why := w.unverified
		if w.statusOK < w.statusNodes || w.statusNodes == 0 {
			why = append(why, fmt.Sprintf("quarantine seen on %d/%d nodes", w.statusOK, w.statusNodes))
		}
		if w.probesRefused == 0 {
			why = append(why, "no refused commit")
		}
		if w.othersFlushed == 0 {
			why = append(why, "no other volume seen flushing")
		}
		if !w.healed {
			why = append(why, "not healed")
		}
		if !w.resumed {
			why = append(why, "flushing not seen resuming")
		}
		notes = append(notes, fmt.Sprintf("window %d (%s): %s", i+1, w.plant[1].Key, strings.Join(why, "; ")))
	}
	stats := map[string]any{
		"windows":        len(windows),
		"verified":       verified,
		"void_plants":    voidPlants,
		"refused_reads":  refusedReads,
		"unverified":     notes,
		"others_flushed": sumWindows(windows, func(w *qWindow) int { return w.othersFlushed }),
		"probes_refused": sumWindows(windows, func(w *qWindow) int { return w.probesRefused }),
	}
	fallback := Valid
	if verified == 0 {
		fallback = Unknown
	}
	return an.result("quarantine", fallback, stats)
}

func sumWindows(ws []*qWindow, f func(*qWindow) int) int {
	n := 0
	for _, w := range ws {
		n += f(w)
	}
	return n
}
