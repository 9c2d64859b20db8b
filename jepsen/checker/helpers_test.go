package checker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
)

// ev is one history event at a time in milliseconds; hist numbers them.
type ev struct {
	t  int
	op history.Op
}

func hist(evs ...ev) []history.Op {
	out := make([]history.Op, len(evs))
	for i, e := range evs {
		out[i] = e.op
		out[i].Index = i
		out[i].Time = time.Duration(e.t) * time.Millisecond
	}
	return out
}

// commit invokes a commit of hash on base by process p.
func commit(t, p int, vid string, base uint64, hash string) ev {
	return ev{t, history.Op{Process: p, Type: history.Invoke, F: "commit", VID: vid, Base: base, Hash: hash}}
}

func ok(t, p int, f, vid string, lsn uint64, hash string) ev {
	return ev{t, history.Op{Process: p, Type: history.OK, F: f, VID: vid, LSN: lsn, Hash: hash}}
}

func fail(t, p int, f, vid string) ev {
	return ev{t, history.Op{Process: p, Type: history.Fail, F: f, VID: vid, Error: "conflict"}}
}

func info(t, p int, f, vid string) ev {
	return ev{t, history.Op{Process: p, Type: history.Info, F: f, VID: vid, Error: "timeout"}}
}

func read(t, p int, vid string) ev {
	return ev{t, history.Op{Process: p, Type: history.Invoke, F: "read", VID: vid}}
}

// wantVerdict fails tb unless r has verdict want and, if invalid, an
// anomaly containing every string in mention.
func wantVerdict(tb testing.TB, r checker.Result, want checker.Verdict, mention ...string) {
	tb.Helper()
	if r.Valid != want {
		tb.Fatalf("%s: verdict %s, want %s; anomalies %q; stats %v", r.Name, r.Valid, want, r.Anomalies, r.Stats)
	}
	if want != checker.Invalid && len(r.Anomalies) > 0 {
		tb.Fatalf("%s: verdict %s with anomalies %q", r.Name, r.Valid, r.Anomalies)
	}
	if want == checker.Invalid && len(r.Anomalies) == 0 {
		tb.Fatalf("%s: invalid without anomalies", r.Name)
	}
	if len(mention) == 0 {
		return
	}
	for _, a := range r.Anomalies {
		all := true
		for _, m := range mention {
			all = all && strings.Contains(a, m)
		}
		if all {
			return
		}
	}
	tb.Fatalf("%s: no anomaly mentions all of %q: %q", r.Name, mention, r.Anomalies)
}
