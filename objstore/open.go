package objstore

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Open returns the Store a URL names:
//
//	mem://
//	file:///abs/path/prefix
//	s3://bucket/prefix?endpoint=http://127.0.0.1:7300&region=us-east-1&path_style=true
//
// mem:// is a new, empty in-memory store (every Open returns a different
// one); anything after "mem://" is ignored.
//
// file:// stores each key as a file under the absolute directory in the URL
// path, creating the directory if needed. The host must be empty or
// "localhost".
//
// s3:// stores key k as object "prefix/k" in the bucket (as "k" when the
// prefix is empty). Query parameters:
//
//	endpoint       base URL of an S3-compatible server (default: AWS S3)
//	region         signing region (default: the SDK's AWS_REGION or profile,
//	               else us-east-1)
//	path_style     true or false: path-style addressing (default true when
//	               endpoint is set, else false)
//	access_key     static credentials; with secret_key (and optionally
//	secret_key     session_token) they replace the SDK's default chain
//	session_token  (environment AWS_ACCESS_KEY_ID..., shared files, IMDS)
//
// and these, which override the Config fields they name (see Config for
// units and defaults):
//
//	max_attempts        Config.MaxAttempts, an integer
//	max_backoff         Config.MaxBackoff, a Go duration (100ms, 5s)
//	first_byte_timeout  Config.FirstByteTimeout, a duration
//	attempt_timeout     Config.AttemptTimeout, a duration
//	min_throughput      Config.MinThroughput, bytes per second, an integer
//	hedge_after         Config.HedgeAfter, a duration; 0 turns hedging off
//	hedge_max           Config.HedgeMax, a duration
//	hedge_quantile      Config.HedgeQuantile, a number in (0, 1]
//
// An unknown parameter is an error (ErrInvalidURL), so a typo does not go
// unnoticed. Open does no network I/O: a store whose server is down opens
// fine and fails on use. ctx bounds loading the SDK's shared configuration.
func Open(ctx context.Context, rawURL string, opts ...Option) (Store, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, which may hold a secret key.
		return nil, fmt.Errorf("%w: cannot parse", ErrInvalidURL)
	}
	switch u.Scheme {
	case "mem":
		return NewMemory(), nil
	case "file":
		return openFile(u, cfg)
	case "s3":
		return openS3(ctx, u, cfg)
	default:
		return nil, fmt.Errorf("%w: unknown scheme %q (want mem, file or s3)", ErrInvalidURL, u.Scheme)
	}
}

func openFile(u *url.URL, cfg Config) (Store, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("%w: file url host %q (want empty or localhost)", ErrInvalidURL, u.Host)
	}
	if u.Opaque != "" || !path.IsAbs(u.Path) {
		return nil, fmt.Errorf("%w: file url needs an absolute path (file:///abs/dir)", ErrInvalidURL)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w: file url takes no query parameters", ErrInvalidURL)
	}
	return newFile(path.Clean(u.Path), cfg)
}

// trimPrefix turns a URL path into a key prefix without slashes at either
// end, checking it follows the key rules.
func trimPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if err := ValidateKey(p); err != nil {
		return "", fmt.Errorf("%w: prefix: %w", ErrInvalidURL, err)
	}
	return p, nil
}
