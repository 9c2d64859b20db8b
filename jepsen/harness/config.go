package harness

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Errors returned by this package.
var (
	// ErrInvalidConfig is wrapped by Config.Validate and Start.
	ErrInvalidConfig = errors.New("harness: invalid config")
	// ErrNoNode means a node index is out of range.
	ErrNoNode = errors.New("harness: no such node")
	// ErrNoSuchEdge means an edge index is out of range.
	ErrNoSuchEdge = errors.New("harness: no such edge")
	// ErrNotRunning means the node has no live process.
	ErrNotRunning = errors.New("harness: node not running")
	// ErrRunning means the node already has a live process.
	ErrRunning = errors.New("harness: node already running")
	// ErrStopped means Stop was called.
	ErrStopped = errors.New("harness: cluster stopped")
	// ErrExited means a process exited while the harness waited for it to
	// start serving.
	ErrExited = errors.New("harness: process exited")
	// ErrNoObjectStore means the cluster runs without an object store.
	ErrNoObjectStore = errors.New("harness: no object store")
)

// Config describes a cluster. Start from DefaultConfig.
type Config struct {
	// Binary is the graft executable (bin/graft). Required.
	Binary string
	// UpgradeBinary, when set, is the graft executable GracefulRestart
	// starts: the node it restarts, and every later start of that node,
	// runs it (a rolling upgrade from Binary). Default "": Binary.
	UpgradeBinary string
	// Dir is the state root: Dir/n{i+1} per node, Dir/s3 for the object
	// store, created if missing. Required.
	Dir string
	// Nodes is the number of nodes, 1..9. Default 3.
	Nodes int
	// NoObjectStore starts no `graft s3` process and passes no
	// --object-store: nothing is flushed. Default false.
	NoObjectStore bool
	// Bucket is the object store's bucket. Default "graft".
	Bucket string
	// ObjectStoreQuery is added to the nodes' --object-store URL: the S3
	// client's deadlines (objstore URL parameters). The default,
	// "first_byte_timeout=1s&attempt_timeout=3s&max_attempts=3", makes a
	// blackholed or trickling store fail a flush round within a few
	// seconds, inside one fault window, on a loopback store whose healthy
	// answers take milliseconds; the production defaults (5 s x 5
	// attempts) would outlast the window, and the fault would only delay
	// rounds.
	ObjectStoreQuery string
	// RaftHeartbeatTimeout and RaftElectionTimeout are passed to every
	// node; short, so that faults have quick effects. Default 300ms each.
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	// NodeArgs are appended to every node's arguments, last, so they can
	// override the harness's (flush intervals, log levels). Default none.
	NodeArgs []string
	// Edges is the number of `graft edge` processes started in front of
	// the nodes (upstream: the nodes' client proxies; object store: the
	// object-store proxy), 0..9. Default 0.
	Edges int
	// EdgeArgs are appended to every edge's arguments. Default none.
	EdgeArgs []string
	// Secure runs every node and edge with TLS (a throwaway CA in Dir/tls:
	// HTTPS, mutual TLS between the nodes) and tokens (a signing key in
	// Dir/auth-key); the harness and Cluster.ClientOptions carry the CA
	// and an admin token. Default false.
	Secure bool
	// Env is added to the environment the processes inherit. Default none.
	Env []string
	// StartTimeout bounds how long a start or restart waits for the
	// process to listen. Default 20s.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	// Default 10s.
	StopTimeout time.Duration
	// PollInterval is how often readiness and leadership are polled.
	// Default 50ms.
	PollInterval time.Duration
	// RequestTimeout bounds each status request the harness sends to a
	// node. Default 1s.
	RequestTimeout time.Duration
	// Logger receives what the harness does (starts, exits, faults). nil
	// discards it. Default nil.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default set; the caller fills
// in Binary and Dir.
func DefaultConfig() Config {
	return Config{
		Nodes:                3,
		Bucket:               "graft",
		ObjectStoreQuery:     "first_byte_timeout=1s&attempt_timeout=3s&max_attempts=3",
		RaftHeartbeatTimeout: 300 * time.Millisecond,
		RaftElectionTimeout:  300 * time.Millisecond,
		StartTimeout:         20 * time.Second,
		StopTimeout:          10 * time.Second,
		PollInterval:         50 * time.Millisecond,
		RequestTimeout:       time.Second,
	}
}

// Validate reports every field out of range, wrapping ErrInvalidConfig.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Binary == "" {
		bad("binary is empty")
	}
	if c.Dir == "" {
		bad("dir is empty")
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		bad("nodes %d not in 1..9", c.Nodes)
	}
	if c.Edges < 0 || c.Edges > 9 {
		bad("edges %d not in 0..9", c.Edges)
	}
	if !c.NoObjectStore && c.Bucket == "" {
		bad("bucket is empty")
	}
	if c.RaftHeartbeatTimeout <= 0 || c.RaftElectionTimeout <= 0 {
		bad("raft timeouts %s, %s must be positive", c.RaftHeartbeatTimeout, c.RaftElectionTimeout)
	}
	if c.StartTimeout <= 0 || c.StopTimeout <= 0 || c.PollInterval <= 0 || c.RequestTimeout <= 0 {
		bad("start timeout, stop timeout, poll interval and request timeout must be positive")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}
