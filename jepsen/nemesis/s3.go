package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// S3Faults is what the object-store nemeses need besides Cluster's S3Down
// and S3Delay; the cluster passed to Run implements it when it has an
// object store (jepsen's adapter over jepsen/harness does).
type S3Faults interface {
	// S3Reset resets every object-store connection, open or new, until
	// S3Down(false) restores the link.
	S3Reset() error
	// S3Rate limits the object-store link to bytesPerSecond in each
	// direction; 0 removes the limit.
	S3Rate(bytesPerSecond int64) error
	// S3Errors makes the store answer the share rate of its requests
	// whose path contains match ("" matches all) with HTTP status (500
	// or 503); rate 0 turns it off.
	S3Errors(ctx context.Context, rate float64, status int, match string) error
}

// S3Modes are the object-store faults, each also a nemesis name; the
// nemesis "s3" picks one of them per fault window from the schedule.
var S3Modes = []string{"s3-blackhole", "s3-reset", "s3-slow", "s3-trickle", "s3-errors"}

// ErrNoS3Faults means an object-store nemesis ran on a cluster that does
// not implement S3Faults.
var ErrNoS3Faults = errors.New("nemesis: cluster cannot inject object-store faults")

// S3Mode returns the object-store mode a window of nemesis name injected,
// such as "s3-reset", read from the window's description; "" for a window
// of another nemesis.
func S3Mode(name, what string) string {
	if name != "s3" {
		if isS3(name) {
			return name
		}
		return ""
	}
	mode, _, _ := strings.Cut(what, ":")
	if m := "s3-" + mode; isS3(m) {
		return m
	}
	return ""
}

func isS3(name string) bool {
	for _, m := range S3Modes {
		if m == name {
			return true
		}
	}
	return false
}

// s3Fault returns the fault of an object-store nemesis (name "s3" or one
// of S3Modes). Every choice is drawn from rng when the fault is created.
// Each description starts with the mode ("blackhole: ...").
func s3Fault(name string, rng *rand.Rand) fault {
	mode := name
	if name == "s3" {
		mode = S3Modes[rng.IntN(len(S3Modes))]
	}
	var start func(ctx context.Context, c Cluster, s S3Faults) (string, error)
	switch mode {
	case "s3-blackhole":
		// Like an iptables DROP: bytes held, connections open; released
		// on heal. Only a client-side deadline turns it into a failure.
		start = func(_ context.Context, c Cluster, _ S3Faults) (string, error) {
			return "blackhole: object-store link holds every byte, connections stay open", c.S3Down(true)
		}
	case "s3-reset":
		start = func(_ context.Context, _ Cluster, s S3Faults) (string, error) {
			return "reset: every object-store connection reset (RST)", s.S3Reset()
		}
	case "s3-slow":
		d := []time.Duration{250 * time.Millisecond, time.Second, 3 * time.Second}[rng.IntN(3)]
		start = func(_ context.Context, c Cluster, _ S3Faults) (string, error) {
			return fmt.Sprintf("slow: object-store link +%s each way", d), c.S3Delay(d)
		}
	case "s3-trickle":
		rate := []int64{256, 1 << 10, 4 << 10}[rng.IntN(3)]
		start = func(_ context.Context, _ Cluster, s S3Faults) (string, error) {
			return fmt.Sprintf("trickle: object-store link at %d B/s each way", rate), s.S3Rate(rate)
		}
	case "s3-errors":
		status := []int{500, 503}[rng.IntN(2)]
		rate, match := []float64{0.5, 0.9, 1}[rng.IntN(3)], ""
		if rng.IntN(2) == 0 {
			// S3 throttles per key prefix: every segment upload fails,
			// log records still go through.
			rate, match = 1, "/segments/"
		}
		start = func(ctx context.Context, _ Cluster, s S3Faults) (string, error) {
			scope := "of all requests"
			if match != "" {
				scope = "of requests for " + match
			}
			return fmt.Sprintf("errors: object store answers HTTP %d to %.0f%% %s", status, 100*rate, scope), s.S3Errors(ctx, rate, status, match)
		}
	}
	return fault{start: func(ctx context.Context, c Cluster) (string, error) {
		s, ok := c.(S3Faults)
		if !ok {
			return strings.TrimPrefix(mode, "s3-") + ": not injected", ErrNoS3Faults
		}
		return start(ctx, c, s)
	}, stop: func(ctx context.Context, c Cluster) error { return healS3(ctx, c) }}
}

// healS3 undoes every object-store fault.
func healS3(ctx context.Context, c Cluster) error {
	errs := []error{c.S3Down(false), c.S3Delay(0)}
	if s, ok := c.(S3Faults); ok {
		errs = append(errs, s.S3Rate(0), s.S3Errors(ctx, 0, 0, ""))
	}
	return errors.Join(errs...)
}
