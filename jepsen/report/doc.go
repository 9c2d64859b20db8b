// Package report writes a consistency-test run's directory: the history
// (history.jsonl), the verdict (results.json, summary.txt), Porcupine's
// linearizability visualization (linearizability.html, one page per
// volume under linearizability/), a latency and throughput plot with the
// fault windows shaded (latency.svg) and the nodes' logs (logs/).
//
// The overall verdict is false if any checker is false, else unknown if
// any is unknown (or none ran), else true. Rendering is bounded: the
// visualizations share a byte budget, spent on non-linearizable volumes
// first, and the plot samples huge histories; whatever is skipped is
// said so in the index page and in results.json.
package report
