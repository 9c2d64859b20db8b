package edge

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/tlsutil"
)

// Errors returned by the edge.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("edge: invalid config")
	// ErrBadUpstream reports an upstream answer that does not fit the
	// request (wrong snapshot, page or size); it is never cached.
	ErrBadUpstream = errors.New("edge: malformed upstream answer")
)

// Config configures an Edge.
type Config struct {
	// Listen is the address Run serves on. Default 127.0.0.1:7000.
	Listen string
	// Upstream lists the cluster's node API endpoints (http://host:port).
	Upstream []string
	// ObjectStore, when set, is the cluster's object store URL (see
	// objstore.Open): flushed pages are read from it directly.
	ObjectStore string
	// CacheBytes bounds the in-memory cache. Default 256 MiB. The page
	// cache gets 15/16 of it, the snapshot and resolution entries 1/16.
	CacheBytes int64
	// CacheDir, when set, keeps a disk tier there: page versions and the
	// snapshot/resolution entries, bounded by DiskBytes, so a restarted
	// edge starts warm. Default: none.
	CacheDir string
	// DiskBytes bounds the disk tier. Default 1 GiB.
	DiskBytes int64
	// MaxPagesPerRead caps the pages in one ReadPages call; set it to the
	// cluster's limit so both reject the same requests. Default 1024.
	MaxPagesPerRead int
	// HistoryRefresh is how often the object store's list of a volume's
	// log records is re-read when a read is past its flushed watermark. It
	// only decides where a page is read from, never what. Default 1s.
	HistoryRefresh time.Duration
	// UpstreamAttempts and UpstreamAttemptTimeout tune the calls to the
	// cluster (see client.WithAttempts). Defaults 4 and 10s.
	UpstreamAttempts       int
	UpstreamAttemptTimeout time.Duration
	// WatchRetries is how many upstream WatchVolume attempts in a row may
	// fail before the subscribers of that volume get the error. Default 6.
	WatchRetries int
	// Logger receives the edge's logs. Default: discard.
	Logger *slog.Logger
	// TLS, when set, serves HTTPS (HTTP/2 via ALPN, HTTP/1.1 too) with the
	// holder's certificate (reloaded by its Reload). Default nil: h2c.
	TLS *tlsutil.Holder
	// UpstreamCAs verifies https:// upstream endpoints. Default nil: the
	// system roots.
	UpstreamCAs *x509.CertPool
	// Auth, when set, checks every request's bearer token here, before any
	// work, as a node does; the caller's Authorization header is then
	// forwarded upstream on the calls made for it, so the cluster checks
	// it too. Default nil: no authentication.
	Auth *auth.Verifier
	// UpstreamToken, when set, is the edge's own token for the calls it
	// makes for no single caller (a volume's shared WatchVolume stream).
	// Without it that stream carries the token of the subscriber that
	// opened it. Default empty.
	UpstreamToken string
	// RevocationRefresh is how often an edge with Auth re-reads the
	// cluster's revocation list, so cache hits refuse revoked tokens too.
	// Default 2s.
	RevocationRefresh time.Duration
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Listen:                 "127.0.0.1:7000",
		CacheBytes:             256 << 20,
		DiskBytes:              1 << 30,
		MaxPagesPerRead:        1024,
		HistoryRefresh:         time.Second,
		UpstreamAttempts:       4,
		UpstreamAttemptTimeout: 10 * time.Second,
		WatchRetries:           6,
		RevocationRefresh:      2 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case len(c.Upstream) == 0:
		return fmt.Errorf("%w: no upstream endpoints", ErrConfig)
	case c.CacheBytes < 64<<10:
		return fmt.Errorf("%w: cache bytes %d is below 64 KiB", ErrConfig, c.CacheBytes)
	case c.CacheDir != "" && c.DiskBytes < 4<<20:
		return fmt.Errorf("%w: disk bytes %d is below 4 MiB", ErrConfig, c.DiskBytes)
	case c.MaxPagesPerRead < 0:
		return fmt.Errorf("%w: max pages per read %d is negative", ErrConfig, c.MaxPagesPerRead)
	case c.HistoryRefresh <= 0:
		return fmt.Errorf("%w: history refresh %v must be positive", ErrConfig, c.HistoryRefresh)
	case c.Auth != nil && c.RevocationRefresh <= 0:
		return fmt.Errorf("%w: revocation refresh %v must be positive", ErrConfig, c.RevocationRefresh)
	case c.UpstreamAttempts <= 0 || c.UpstreamAttemptTimeout <= 0 || c.WatchRetries <= 0:
		return fmt.Errorf("%w: upstream attempts, attempt timeout and watch retries must be positive", ErrConfig)
	}
	return nil
}
