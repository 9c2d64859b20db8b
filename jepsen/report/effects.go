package report

import (
	"bufio"
	"fmt"
	"html"
	"maps"
	"slices"
	"strings"
)

// Effect is what one fault window caused, measured from the nodes' metrics
// (scraped before and after the window) and from the history: the report
// says what every fault did, and a fault that did nothing is a finding
// too (see NoEffect).
type Effect struct {
	// Nemesis is the window's nemesis name; Mode the object-store mode it
	// injected ("s3-reset", ...), empty for other nemeses.
	Nemesis string `json:"nemesis"`
	Mode    string `json:"mode,omitempty"`
	What    string `json:"what"`
	// Start and End are the fault window, in seconds since the run's
	// start; Until is the end of the span the counts cover (End plus a
	// settling second, at most the next window's Start).
	Start float64 `json:"start_s"`
	End   float64 `json:"end_s"`
	Until float64 `json:"until_s"`

	// FlushRoundsFailed counts failed flush round attempts on any node
	// (graft_flush_errors_total); FlushRoundsDone completed ones.
	FlushRoundsFailed int `json:"flush_rounds_failed"`
	FlushRoundsDone   int `json:"flush_rounds_completed"`
	// PutErrors are failed object-store PUTs by kind (segment, log).
	PutErrors map[string]int `json:"put_errors,omitempty"`
	// MaxFlushLag is the largest graft_flush_lag_seconds seen, in seconds.
	MaxFlushLag float64 `json:"max_flush_lag_s"`

	// Leaders is the sequence of leaders the samples saw (node IDs, "-"
	// for none); LeaderChanges the changes in it. TermBefore and
	// TermAfter are the highest Raft term at the span's edges.
	Leaders       []string `json:"leaders"`
	LeaderChanges int      `json:"leader_changes"`
	TermBefore    uint64   `json:"term_before"`
	TermAfter     uint64   `json:"term_after"`

	// Operations that completed in the span: ok, failed (certainly no
	// effect) and unknown outcomes (info); ErrorsByCode counts the failed
	// and unknown ones by Connect code ("aborted" is a lost race on a
	// base, "other" has no code).
	OpsOK           int            `json:"ops_ok"`
	OpsFailed       int            `json:"ops_failed"`
	UnknownOutcomes int            `json:"unknown_outcomes"`
	ErrorsByCode    map[string]int `json:"errors_by_code,omitempty"`

	// Exposed are the nodes the fault isolated (cut from a majority),
	// paused, or slowed (outbound peer links delayed: slow-leader);
	// ReadsFromIsolated, ReadsFromPaused and ReadsFromSlowed count the
	// reads sent to such a node and answered ok, both while it was so.
	Exposed           []string `json:"exposed,omitempty"`
	ReadsFromIsolated int      `json:"reads_answered_by_isolated_node"`
	ReadsFromPaused   int      `json:"reads_answered_by_paused_node"`
	ReadsFromSlowed   int      `json:"reads_answered_by_slowed_node"`

	// S3ErrorsInjected and S3Resets are what the object store and its
	// proxy did: HTTP errors answered, connections reset.
	S3ErrorsInjected int64 `json:"s3_errors_injected"`
	S3Resets         int64 `json:"s3_connections_reset"`

	// Unscraped lists nodes whose metrics could not be read at an edge of
	// the span (down or paused): their counts may be missing.
	Unscraped []string `json:"unscraped,omitempty"`
	// NoEffect says what the fault was expected to cause and did not
	// ("no flush round failed"); empty when it had its effect.
	NoEffect string `json:"no_effect,omitempty"`
	// Summary is the one-line account printed in summary.txt.
	Summary string `json:"summary"`
}

// writeEffectsText appends the effects section of summary.txt.
func writeEffectsText(bw *bufio.Writer, effects []Effect) {
	if len(effects) == 0 {
		return
	}
	none := 0
	for _, e := range effects {
		if e.NoEffect != "" {
			none++
		}
	}
	fmt.Fprintf(bw, "\nfault effects (%d windows, %d with no effect):\n", len(effects), none)
	for _, e := range effects {
		fmt.Fprintf(bw, "  %s\n", e.Summary)
	}
}

// writeEffectsHTML appends the effects table of the HTML report.
func writeEffectsHTML(b *strings.Builder, effects []Effect) {
	if len(effects) == 0 {
		return
	}
	b.WriteString("<h2>Fault effects</h2>\n<p>What each fault window caused, from the nodes' metrics scraped around it and from the history. A fault with no effect is a finding: the test did not exercise what it meant to.</p>\n")
	b.WriteString("<table><tr><th>fault</th><th>window (s)</th><th>flush rounds failed</th><th>leaders</th><th>term</th><th>unknown</th><th>errors</th><th>reads by isolated / paused / slowed node</th><th>effect</th></tr>\n")
	for _, e := range effects {
		name := e.Nemesis
		if e.Mode != "" {
			name = e.Mode
		}
		var codes []string
		for _, c := range slices.Sorted(maps.Keys(e.ErrorsByCode)) {
			codes = append(codes, fmt.Sprintf("%s=%d", c, e.ErrorsByCode[c]))
		}
		verdict, class := "effect", "Ok"
		if e.NoEffect != "" {
			verdict, class = "no effect: "+e.NoEffect, "Unknown"
		}
		fmt.Fprintf(b, "<tr><td title=\"%s\">%s</td><td>%.1f-%.1f</td><td>%d</td><td>%s</td><td>%d-%d</td><td>%d</td><td>%s</td><td>%d / %d / %d</td><td class=\"%s\">%s</td></tr>\n",
			html.EscapeString(e.What), html.EscapeString(name), e.Start, e.End, e.FlushRoundsFailed,
			html.EscapeString(strings.Join(e.Leaders, " > ")), e.TermBefore, e.TermAfter, e.UnknownOutcomes,
			html.EscapeString(strings.Join(codes, " ")), e.ReadsFromIsolated, e.ReadsFromPaused, e.ReadsFromSlowed, class, html.EscapeString(verdict))
	}
	b.WriteString("</table>\n")
}
