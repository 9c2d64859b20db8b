package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// Deadlines per attempt.
//
// The SDK's retry middleware (Finalize step, ID "Retry") loops over
// attempts; attemptDeadline sits right after it, so it runs once per
// attempt, and gives each attempt a context of its own that two timers
// cancel: one when no response byte has arrived FirstByteTimeout (plus the
// upload's allowance) after the attempt started, one when the whole attempt
// ran past AttemptTimeout plus its size allowance. A GetObject body is read
// within the attempt (the Store API returns whole byte slices anyway), so a
// body that stalls half way is an attempt timeout too, retried like any
// other. A timed-out attempt returns a timeoutError, which the retryer
// (isRetryableAttemptError, first in its list) retries with backoff up to
// MaxAttempts; the caller's own context still ends everything at once.

// Operation names: the op label of the metrics.
const (
	opGet         = "get"
	opGetRange    = "get_range"
	opHead        = "head"
	opPut         = "put"
	opPutIfAbsent = "put_if_absent"
	opList        = "list"
	opDelete      = "delete"
)

// callState is what one Store call tells its attempts, through the context.
type callState struct {
	op       string
	reqBytes int64 // request body size
	attempts atomic.Int32
	// first, when not nil, is closed at the first response byte of any of
	// the call's attempts (hedging watches it).
	first     chan struct{}
	firstOnce sync.Once
}

type callKey struct{}

func withCall(ctx context.Context, cs *callState) context.Context {
	return context.WithValue(ctx, callKey{}, cs)
}

// timeoutError is an attempt cancelled at one of its deadlines.
type timeoutError struct {
	op    string
	kind  string // "first_byte" or "attempt"
	after time.Duration
}

func (e *timeoutError) Error() string {
	what := "no response byte"
	if e.kind == "attempt" {
		what = "attempt not complete"
	}
	return fmt.Sprintf("%s: %s: %s within %v", ErrTimeout, e.op, what, e.after.Round(time.Millisecond))
}

// Unwrap exposes ErrTimeout only: the attempt's context was cancelled, but
// the caller's was not, so the error must not look like context.Canceled.
func (e *timeoutError) Unwrap() error { return ErrTimeout }

// Timeout marks the error as a timeout (net.Error style).
func (e *timeoutError) Timeout() bool { return true }

// bodyError is a failure while reading a response body (a connection reset
// or a truncated body half way): transient, so retryable.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read response body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// isRetryableAttemptError comes first in the retryer's list: the SDK's
// NoRetryCanceledError would otherwise refuse an attempt whose context we
// cancelled ourselves.
var isRetryableAttemptError = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	var te *timeoutError
	var be *bodyError
	if errors.As(err, &te) || errors.As(err, &be) {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
})

// transferTime is how long n bytes may take at min bytes per second.
func transferTime(n, min int64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(float64(n) / float64(min) * float64(time.Second))
}

// attemptDeadline is the per-attempt Finalize middleware.
type attemptDeadline struct{ s *s3Store }

func (attemptDeadline) ID() string { return "GraftAttemptDeadline" }

func (m attemptDeadline) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	s, cfg := m.s, m.s.cfg
	cs, _ := ctx.Value(callKey{}).(*callState)
	if cs == nil {
		cs = &callState{op: "other"}
	}
	if cs.attempts.Add(1) > 1 {
		s.metrics.retries.WithLabelValues(cs.op).Inc()
	}
	start := time.Now()
	up := transferTime(cs.reqBytes, cfg.MinThroughput)
	firstBudget := cfg.FirstByteTimeout + up
	var totalBudget atomic.Int64
	totalBudget.Store(int64(cfg.AttemptTimeout + up))

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	total := time.AfterFunc(cfg.AttemptTimeout+up, func() {
		cancel(&timeoutError{op: cs.op, kind: "attempt", after: time.Duration(totalBudget.Load())})
	})
	defer total.Stop()
	var gotFirst atomic.Bool
	first := time.AfterFunc(firstBudget, func() {
		if !gotFirst.Load() {
			cancel(&timeoutError{op: cs.op, kind: "first_byte", after: firstBudget})
		}
	})
	defer first.Stop()
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() {
			if gotFirst.Swap(true) {
				return
			}
			first.Stop()
			s.firstByte(cs, time.Since(start))
		},
	})

	out, md, err := next.HandleFinalize(actx, in)
	first.Stop()
	if !gotFirst.Swap(true) && (err == nil || isResponse(err)) {
		// A transport without httptrace support (Config.HTTPClient).
		s.firstByte(cs, time.Since(start))
	}
	if err == nil {
		if o, ok := out.Result.(*s3.GetObjectOutput); ok && o.Body != nil {
			n := aws.ToInt64(o.ContentLength)
			if n > 0 && total.Stop() {
				budget := time.Duration(totalBudget.Load()) + transferTime(n, cfg.MinThroughput)
				totalBudget.Store(int64(budget))
				total.Reset(time.Until(start.Add(budget)))
			}
			data, rerr := readBody(o.Body, n)
			if rerr != nil {
				err = &bodyError{err: rerr}
			} else {
				o.Body = &bufferedBody{Reader: bytes.NewReader(data), data: data}
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		var te *timeoutError
		// A response that arrived before the timer fired stands.
		if errors.As(context.Cause(actx), &te) && !isResponse(err) {
			s.metrics.timeouts.WithLabelValues(cs.op, te.kind).Inc()
			err = te
			// The pool's other connections may be as dead as this one
			// (a middlebox lost its flows): the retry dials afresh.
			if s.closeIdle != nil {
				s.closeIdle()
			}
		}
	}
	return out, md, err
}

// isResponse reports whether err carries an HTTP response (the SDK also
// wraps transport failures in a ResponseError, with status 0).
func isResponse(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() > 0
}

// firstByte notes a response's first byte: a latency sample for hedging
// (GETs only), and the signal a hedged call waits for.
func (s *s3Store) firstByte(cs *callState, d time.Duration) {
	if cs.op == opGet || cs.op == opGetRange {
		s.latency.add(d)
	}
	if cs.first != nil {
		cs.firstOnce.Do(func() { close(cs.first) })
	}
}

// bufferedBody is a GetObject body already read by attemptDeadline.
type bufferedBody struct {
	*bytes.Reader
	data []byte
}

func (*bufferedBody) Close() error { return nil }
