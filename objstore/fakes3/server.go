package fakes3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"
)

const (
	// DBFile is the name of the database file in a Server's directory.
	DBFile = "fakes3.db"
	// Region is the signing region in the URLs a Server returns.
	Region = "us-east-1"
	// AccessKey and SecretKey are the static credentials in the URLs a
	// Server returns; the server accepts any.
	AccessKey = "graft-dev"
	SecretKey = "graft-dev-secret"
)

// Sentinel errors returned by this package.
var (
	// ErrDirLocked is returned by Serve when another Server, in this
	// process or another, has the directory's database open.
	ErrDirLocked = errors.New("fakes3: data directory in use by another server")
	// ErrInvalidBucket is returned by Serve for a name S3 does not allow as
	// a bucket name.
	ErrInvalidBucket = errors.New("fakes3: invalid bucket name")
	// ErrInvalidFaults is returned by SetFaults for faults out of range.
	ErrInvalidFaults = errors.New("fakes3: invalid faults")
)

// lockTimeout is how long Serve waits for the database's file lock. A
// previous server that exited has released it, so a short wait suffices;
// a live one keeps it, and waiting longer would only delay the error.
const lockTimeout = 100 * time.Millisecond

// readHeaderTimeout bounds how long a client may take to send its request
// headers.
const readHeaderTimeout = 30 * time.Second

// Server is a running S3-compatible server holding one bucket. Create it
// with Serve and stop it with Close; its methods are safe for concurrent use.
type Server struct {
	endpoint string
	bucket   string
	dir      string
	log      *slog.Logger
	db       *bolt.DB
	srv      *http.Server
	served   chan struct{} // closed when the serving goroutine has returned

	latency atomic.Int64 // nanoseconds added to every request
	faults  faultState   // see faults.go

	closeOnce sync.Once
	closeErr  error
}

// SetLatency makes the server wait d before answering each request, to
// emulate a distant object store in benchmarks and tests. 0 turns it off.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

func (s *Server) delay(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Serve serves the S3 API on ln until Close, keeping objects in
// dir/DBFile (dir is created if missing) and creating bucket when the
// database does not hold it yet. ctx bounds the startup only. Serve takes
// ownership of ln: it is closed by Close, or before Serve returns an error.
// logger (nil discards) receives the server's events; gofakes3's
// per-request messages are logged at debug level.
func Serve(ctx context.Context, ln net.Listener, dir, bucket string, logger *slog.Logger) (*Server, error) {
	s, err := serve(ctx, ln, dir, bucket, logger)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return s, nil
}

func serve(ctx context.Context, ln net.Listener, dir, bucket string, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("serve s3: %w", err)
	}
	if err := ValidateBucket(bucket); err != nil {
		return nil, fmt.Errorf("serve s3: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("serve s3: create data dir: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("serve s3: open %s: %w", path, ErrDirLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("serve s3: open %s: %w", path, err)
	}
	backend := s3bolt.New(db)
	if err := ensureBucket(backend, bucket); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("serve s3: %w", err)
	}
	if err := ctx.Err(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("serve s3: %w", err)
	}

	faker := gofakes3.New(&detachedBackend{Backend: backend},
		gofakes3.WithLogger(slogLogger{logger}),
		// Our client never asks for versions; s3bolt does not keep them.
		gofakes3.WithoutVersioning(),
	)
	s := &Server{
		endpoint: "http://" + dialAddr(ln.Addr()),
		bucket:   bucket,
		dir:      dir,
		log:      logger,
		db:       db,
		srv: &http.Server{
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		},
		served: make(chan struct{}),
	}
	s.srv.Handler = s.injectFaults(s.delay(faker.Server()))
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("s3 server stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return s, nil
}

// ValidateBucket reports, wrapping ErrInvalidBucket, whether name breaks
// S3's bucket naming rules (3..63 characters of a-z, 0-9, '.' and '-', ...).
func ValidateBucket(name string) error {
	if err := gofakes3.ValidateBucketName(name); err != nil {
		return fmt.Errorf("bucket %q: %w", name, ErrInvalidBucket)
	}
	return nil
}

// ensureBucket creates bucket unless the backend holds it already.
func ensureBucket(b *s3bolt.Backend, bucket string) error {
	ok, err := b.BucketExists(bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", bucket, err)
	}
	if ok {
		return nil
	}
	if err := b.CreateBucket(bucket); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// dialAddr returns the host:port a client dials to reach a listener on a:
// a wildcard address becomes the loopback address of its family.
func dialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	host := "127.0.0.1"
	if ta.IP.To4() == nil {
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// Endpoint returns the server's base URL, http://HOST:PORT.
func (s *Server) Endpoint() string { return s.endpoint }

// Bucket returns the server's bucket.
func (s *Server) Bucket() string { return s.bucket }

// Dir returns the directory holding the server's database.
func (s *Server) Dir() string { return s.dir }

// URL returns the objstore.Open URL of the store under prefix ("" for the
// whole bucket) in the server's bucket.
func (s *Server) URL(prefix string) string {
	return StoreURL(s.endpoint, s.bucket, prefix)
}

// StoreURL returns the objstore.Open URL of the store under prefix in bucket
// of the server at endpoint (http://HOST:PORT), with this package's static
// credentials, region Region and path-style addressing. It needs no running
// Server, so a supervisor can hand the URL out before the server starts.
func StoreURL(endpoint, bucket, prefix string) string {
	q := url.Values{
		"endpoint":   {endpoint},
		"region":     {Region},
		"path_style": {"true"},
		"access_key": {AccessKey},
		"secret_key": {SecretKey},
	}
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	return u.String()
}

// Close stops accepting connections, waits for the requests in flight to
// finish until ctx is done (then drops them), and closes the database. It
// returns the first error; later calls return the same.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		if err := s.srv.Shutdown(ctx); err != nil {
			s.log.Warn("s3 server: requests still in flight; dropping them", "err", err)
			if err := s.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close s3 server: %w", err))
			}
		}
		<-s.served
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close s3 database: %w", err))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// slogLogger adapts gofakes3's logger to slog: errors stay errors,
// warnings warnings, and the per-request info messages become debug.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Print(level gofakes3.LogLevel, v ...any) {
	lv := slog.LevelDebug
	switch level {
	case gofakes3.LogErr:
		lv = slog.LevelError
	case gofakes3.LogWarn:
		lv = slog.LevelWarn
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, lv) {
		return
	}
	l.log.Log(ctx, lv, "gofakes3: "+strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
