package objstore

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes the backends Open creates. What a store is (bucket, prefix,
// endpoint, credentials, directory) comes from the URL; Config holds the
// knobs that do not belong in a URL. The S3 backend's retry, deadline and
// hedging knobs can also be set in the URL (see Open), which overrides
// Config.
type Config struct {
	// MaxAttempts is the number of attempts the S3 backend makes per
	// request, the first one included, with the SDK's standard retryer
	// (exponential backoff with jitter, retry token bucket). 1 disables
	// retries. Default 5. URL: max_attempts.
	MaxAttempts int
	// MaxBackoff caps the delay between two S3 attempts. Default 5s.
	// URL: max_backoff.
	MaxBackoff time.Duration
	// FirstByteTimeout bounds how long one S3 attempt waits for the first
	// byte of the response, counted from the attempt's start; an attempt
	// that uploads n bytes gets FirstByteTimeout + n/MinThroughput. An
	// attempt past it is cancelled and counts as a retryable timeout
	// (ErrTimeout). Must be positive. Default 5s. URL: first_byte_timeout.
	FirstByteTimeout time.Duration
	// AttemptTimeout bounds one whole S3 attempt (connect, request,
	// response and its body) that moves no data; an attempt that moves n
	// bytes (uploaded plus downloaded, the download size taken from the
	// response's Content-Length) gets AttemptTimeout + n/MinThroughput. An
	// attempt past it is cancelled and counts as a retryable timeout
	// (ErrTimeout). Must be positive. Default 10s. URL: attempt_timeout.
	AttemptTimeout time.Duration
	// MinThroughput is the slowest transfer, in bytes per second, an S3
	// attempt may make before it times out (see AttemptTimeout). Must be
	// positive. Default 1 MiB/s. URL: min_throughput.
	MinThroughput int64
	// HedgeAfter is the least time a small S3 GET (a Get, or a GetRange of
	// at most HedgeMaxBytes) waits for its first byte before a second,
	// hedged request is sent; the first of the two to answer is used and
	// the other cancelled. The wait is the HedgeQuantile of recent GET
	// first-byte latencies, clamped to [HedgeAfter, HedgeMax] (HedgeMax
	// until 16 latencies are known). 0 disables hedging. Default 50ms.
	// URL: hedge_after.
	HedgeAfter time.Duration
	// HedgeMax is the longest a small GET waits before it is hedged. At
	// least HedgeAfter. Default 1s. URL: hedge_max.
	HedgeMax time.Duration
	// HedgeQuantile is the quantile of recent GET first-byte latencies a
	// small GET waits before it is hedged, in (0, 1]. Default 0.95.
	// URL: hedge_quantile.
	HedgeQuantile float64
	// HedgeMaxBytes is the largest GetRange that is hedged; Get (whole
	// objects: log records) is always hedged. Default 1 MiB.
	HedgeMaxBytes int64
	// Registerer receives the S3 backend's metrics (timeouts, retries,
	// hedges; see the package documentation). Stores sharing a Registerer
	// share the counters. Default nil: not registered.
	Registerer prometheus.Registerer
	// ListPageSize is the number of keys the S3 backend asks for per
	// ListObjectsV2 page, in [1, 1000]. Default 1000, the S3 maximum.
	ListPageSize int
	// HTTPClient sends the S3 backend's requests, used as is (the SDK's
	// AWS_CA_BUNDLE does not apply to it). Default nil: the SDK's default
	// client (dial timeout 30s, AWS_CA_BUNDLE honoured) with up to 64 idle
	// connections per host, closed by Close.
	HTTPClient *http.Client
	// NoSync turns off fsync in the file backend. Only for tests and
	// benchmarks that do not survive a machine crash; never in production.
	// Default false.
	NoSync bool
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		MaxAttempts:      5,
		MaxBackoff:       5 * time.Second,
		FirstByteTimeout: 5 * time.Second,
		AttemptTimeout:   10 * time.Second,
		MinThroughput:    1 << 20,
		HedgeAfter:       50 * time.Millisecond,
		HedgeMax:         time.Second,
		HedgeQuantile:    0.95,
		HedgeMaxBytes:    1 << 20,
		ListPageSize:     1000,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d below 1", c.MaxAttempts))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("max backoff %v negative", c.MaxBackoff))
	}
	if c.FirstByteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("first byte timeout %v not positive", c.FirstByteTimeout))
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("attempt timeout %v not positive", c.AttemptTimeout))
	}
	if c.MinThroughput <= 0 {
		errs = append(errs, fmt.Errorf("min throughput %d B/s not positive", c.MinThroughput))
	}
	if c.HedgeAfter < 0 || c.HedgeMax < c.HedgeAfter {
		errs = append(errs, fmt.Errorf("hedge after %v and hedge max %v: want 0 <= after <= max", c.HedgeAfter, c.HedgeMax))
	}
	if !(c.HedgeQuantile > 0 && c.HedgeQuantile <= 1) {
		errs = append(errs, fmt.Errorf("hedge quantile %v out of range (0, 1]", c.HedgeQuantile))
	}
	if c.HedgeMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("hedge max bytes %d negative", c.HedgeMaxBytes))
	}
	if c.ListPageSize < 1 || c.ListPageSize > 1000 {
		errs = append(errs, fmt.Errorf("list page size %d out of range [1, 1000]", c.ListPageSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("objstore config: %w", err)
	}
	return nil
}

// Option adjusts the Config Open starts from (DefaultConfig()).
type Option func(*Config)

// WithConfig replaces the whole Config; later options still apply.
func WithConfig(c Config) Option {
	return func(dst *Config) { *dst = c }
}

// WithMaxAttempts sets Config.MaxAttempts.
func WithMaxAttempts(n int) Option {
	return func(c *Config) { c.MaxAttempts = n }
}

// WithHTTPClient sets Config.HTTPClient.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Config) { c.HTTPClient = hc }
}

// WithRegisterer sets Config.Registerer.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *Config) { c.Registerer = r }
}
