package objstore

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Config tunes the backends Open creates. What a store is (bucket, prefix,
// endpoint, credentials, directory) comes from the URL; Config holds the
// knobs that do not belong in a URL.
type Config struct {
	// MaxAttempts is the number of attempts the S3 backend makes per
	// request, the first one included, with the SDK's standard retryer
	// (exponential backoff with jitter, retry token bucket). 1 disables
	// retries. Default 5.
	MaxAttempts int
	// MaxBackoff caps the delay between two S3 attempts. Default 5s.
	MaxBackoff time.Duration
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
		MaxAttempts:  5,
		MaxBackoff:   5 * time.Second,
		ListPageSize: 1000,
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
