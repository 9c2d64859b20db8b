package checker

import (
	"encoding/json"
	"fmt"

	"github.com/graft-cluster/graft/jepsen/history"
)

// Verdict is a checker's decision. It marshals to JSON as true, false or
// "unknown".
type Verdict string

// Verdicts.
const (
	// Valid means the checker found no anomaly.
	Valid Verdict = "true"
	// Invalid means the checker found at least one anomaly.
	Invalid Verdict = "false"
	// Unknown means the checker could not decide (a timeout, missing
	// input) and found no anomaly.
	Unknown Verdict = "unknown"
)

// MarshalJSON encodes Valid as true, Invalid as false and anything else as
// "unknown".
func (v Verdict) MarshalJSON() ([]byte, error) {
	switch v {
	case Valid:
		return []byte("true"), nil
	case Invalid:
		return []byte("false"), nil
	default:
		return []byte(`"unknown"`), nil
	}
}

// UnmarshalJSON accepts true, false, "true", "false" and "unknown".
func (v *Verdict) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", `"true"`:
		*v = Valid
	case "false", `"false"`:
		*v = Invalid
	case `"unknown"`:
		*v = Unknown
	default:
		return fmt.Errorf("checker: bad verdict %s", b)
	}
	return nil
}

// Overall combines verdicts: Invalid if any is Invalid, else Unknown if any
// is Unknown (or there are none: nothing was checked), else Valid.
func Overall(vs ...Verdict) Verdict {
	if len(vs) == 0 {
		return Unknown
	}
	out := Valid
	for _, v := range vs {
		switch v {
		case Valid:
		case Invalid:
			return Invalid
		default:
			out = Unknown
		}
	}
	return out
}

// Result is one checker's outcome.
type Result struct {
	// Name identifies the checker ("linearizable", "chain", ...).
	Name  string  `json:"name"`
	Valid Verdict `json:"valid"`
	// Anomalies describe what is wrong, at most MaxAnomalies of them plus
	// a final "... and N more" line; each names op indexes, vid and lsn.
	Anomalies []string `json:"anomalies"`
	// Stats are counts and facts about what was checked.
	Stats map[string]any `json:"stats"`
}

// MaxAnomalies bounds Result.Anomalies.
const MaxAnomalies = 20

// Verdicts returns the verdicts of rs, in order.
func Verdicts(rs []Result) []Verdict {
	out := make([]Verdict, len(rs))
	for i, r := range rs {
		out[i] = r.Valid
	}
	return out
}

// anomalies collects up to MaxAnomalies descriptions and counts the rest.
type anomalies struct {
	list  []string
	total int
}

func (a *anomalies) addf(format string, args ...any) {
	a.total++
	if len(a.list) < MaxAnomalies {
		a.list = append(a.list, fmt.Sprintf(format, args...))
	}
}

// result builds a Result: Invalid if any anomaly was found, else
// fallback (Valid or Unknown).
func (a *anomalies) result(name string, fallback Verdict, stats map[string]any) Result {
	r := Result{Name: name, Valid: fallback, Anomalies: append([]string{}, a.list...), Stats: stats}
	if r.Stats == nil {
		r.Stats = map[string]any{}
	}
	if a.total > 0 {
		r.Valid = Invalid
		r.Stats["anomalies"] = a.total
		if a.total > len(a.list) {
			r.Anomalies = append(r.Anomalies, fmt.Sprintf("... and %d more", a.total-len(a.list)))
		}
	}
	return r
}

// opRef names an operation by its invoke and completion indexes, its
// process and node: "op 12 (ok 15, p3, node 1)".
func opRef(p [2]history.Op) string {
	done := "no completion"
	if p[1].Time >= 0 {
		done = fmt.Sprintf("%s %d", p[1].Type, p[1].Index)
	}
	return fmt.Sprintf("op %d (%s, p%d, node %d)", p[0].Index, done, p[0].Process, p[0].Node)
}

// commitHash is a commit operation's identity: the invocation's hash, or
// the completion's if the invocation had none.
func commitHash(p [2]history.Op) string {
	if p[0].Hash != "" {
		return p[0].Hash
	}
	return p[1].Hash
}

// short abbreviates a hash for messages.
func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// MarshalJSON keeps anomalies and stats non-null.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	if p.Anomalies == nil {
		p.Anomalies = []string{}
	}
	if p.Stats == nil {
		p.Stats = map[string]any{}
	}
	return json.Marshal(p)
}
