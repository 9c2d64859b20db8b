package devcluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/graft-cluster/graft/objstore/fakes3"
	"github.com/graft-cluster/graft/tlsutil"
)

// Sentinel errors returned by this package.
var (
	// ErrInvalidConfig is wrapped by Config.Validate and New when a Config
	// field is out of range.
	ErrInvalidConfig = errors.New("devcluster: invalid config")
	// ErrRunning is returned by Cluster.Run when it is already running.
	ErrRunning = errors.New("devcluster: already running")
)

// Port layout relative to Config.PortBase: node i (1-based) serves its client
// API on PortBase+i and Raft on PortBase+RaftPortOffset+i; the embedded S3
// server listens on PortBase+S3PortOffset unless Config.S3Port says
// otherwise.
const (
	RaftPortOffset = 100
	S3PortOffset   = 300
	EdgePortOffset = 0
)

// S3DirName is the embedded S3 server's directory in Config.Dir.
const S3DirName = "s3"

// DefaultS3Bucket is the default bucket of the embedded S3 server.
const DefaultS3Bucket = "graft"

// Config describes a local development cluster. Start from DefaultConfig.
type Config struct {
	// Binary is the path of the graft executable to run as `BINARY node ...`;
	// `graft dev` passes os.Executable(). Required; no default.
	Binary string

	// Dir is the state root; node i keeps its state and node.log in
	// Dir/n{i}, created if missing. Required; no default.
	Dir string

	// Nodes is the number of nodes, 1..99. Default 3.
	Nodes int

	// Host is the loopback host every node binds and advertises; an IPv6
	// literal is bracketed in addresses. Default "127.0.0.1".
	Host string

	// PortBase places the ports: node i serves its client API on PortBase+i
	// and Raft on PortBase+100+i. The highest port must stay below 65536.
	// Default 7000 (API 7001..7003, Raft 7101..7103).
	PortBase int

	// ObjectStore is the object-store URL (see objstore.Open) every node
	// gets as --object-store. Empty runs the embedded S3 server (package
	// objstore/fakes3) on Host:S3Port, keeping its objects in Dir/s3 across
	// runs, and gives the nodes its URL. Default empty.
	ObjectStore string

	// S3Port is the embedded S3 server's port; 0 means
	// PortBase+S3PortOffset (7300 with the default PortBase). It must not be
	// a node's port. Unused when ObjectStore is set. Default 0.
	S3Port int

	// EdgePort is the port of the edge (package edge) Run serves in front
	// of the nodes, reading flushed pages from the object store; 0 means
	// PortBase+EdgePortOffset (7000 with the default PortBase), -1 runs no
	// edge. It must not be a node's or the S3 server's port. Default 0.
	EdgePort int
	// EdgeCacheBytes bounds the edge's cache. Default 256 MiB.
	EdgeCacheBytes int64
	// S3Bucket is the embedded S3 server's bucket, created if missing; it
	// must be a valid S3 bucket name. Unused when ObjectStore is set.
	// Default "graft".
	S3Bucket string

	// S3Latency is added to every request the embedded S3 server answers,
	// to emulate a distant object store in benchmarks. Default 0.
	S3Latency time.Duration

	// ExtraArgs are appended, in order, to every node's arguments (after
	// --object-store, so they can override it). Default none.
	ExtraArgs []string

	// RestartDelay is the wait before restarting a node that exited while
	// the cluster is running. 0 restarts at once. Default 1s.
	RestartDelay time.Duration

	// CrashLoopUptime: a node run shorter than this counts as a quick exit;
	// a longer run resets the count. Default 10s.
	CrashLoopUptime time.Duration

	// CrashLoopCount is the number of consecutive quick exits from which the
	// restart delay doubles: the CrashLoopCount-th quick exit in a row
	// waits 2*RestartDelay (200ms if RestartDelay is 0), the next one twice
	// that, and so on, capped at MaxRestartDelay. Must be >= 1. Default 5.
	CrashLoopCount int

	// MaxRestartDelay caps the crash-loop backoff; must be >= RestartDelay.
	// Default 10s.
	MaxRestartDelay time.Duration

	// StopTimeout is how long shutdown waits after SIGTERM before it sends
	// SIGKILL to the nodes still alive (graceful node shutdown transfers
	// Raft leadership first, which takes a moment). Must be > 0.
	// Default 15s.
	StopTimeout time.Duration

	// ReadyPollInterval is how often WaitReady polls /readyz. Must be > 0.
	// Default 50ms.
	ReadyPollInterval time.Duration

	// Logger receives the supervisor's own events (starts, exits, restarts,
	// kills). nil discards them. Default nil.
	Logger *slog.Logger

	// LogOutput receives the nodes' output lines, prefixed "n{i} | ".
	// nil means os.Stderr. Default os.Stderr.
	LogOutput io.Writer
	// TLS, when set, is the certificate, key and CA every node and the
	// edge serve with (HTTPS; mutual TLS between the nodes); `graft dev
	// --tls` generates throwaway ones (tlsutil.DevFiles). Default none:
	// plaintext.
	TLS tlsutil.Files
	// AuthKey, when set, is the Ed25519 key file (private or public) the
	// nodes and the edge verify bearer tokens with (--auth-key). Default
	// empty: no authentication.
	AuthKey string
}

// DefaultConfig returns a Config with every default set; the caller fills in
// Binary and Dir.
func DefaultConfig() Config {
	return Config{
		Nodes:             3,
		Host:              "127.0.0.1",
		PortBase:          7000,
		S3Bucket:          DefaultS3Bucket,
		EdgeCacheBytes:    256 << 20,
		RestartDelay:      time.Second,
		CrashLoopUptime:   10 * time.Second,
		CrashLoopCount:    5,
		MaxRestartDelay:   10 * time.Second,
		StopTimeout:       15 * time.Second,
		ReadyPollInterval: 50 * time.Millisecond,
		LogOutput:         os.Stderr,
	}
}

// Validate reports the first out-of-range field, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("validate config: %s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	switch {
	case c.Binary == "":
		return bad("binary is empty")
	case c.Dir == "":
		return bad("dir is empty")
	case c.Nodes < 1 || c.Nodes >= RaftPortOffset:
		return bad("nodes %d not in 1..%d", c.Nodes, RaftPortOffset-1)
	case c.Host == "":
		return bad("host is empty")
	case c.PortBase < 1 || c.PortBase+RaftPortOffset+c.Nodes > 65535:
		return bad("port base %d puts ports outside 1..65535", c.PortBase)
	case c.S3Port < 0:
		return bad("s3 port %d is negative", c.S3Port)
	case c.ObjectStore == "" && c.s3Port() > 65535:
		return bad("s3 port %d outside 1..65535 (set S3Port or ObjectStore)", c.s3Port())
	case c.ObjectStore == "" && c.isNodePort(c.s3Port()):
		return bad("s3 port %d is a node's port", c.s3Port())
	case c.ObjectStore == "" && fakes3.ValidateBucket(c.S3Bucket) != nil:
		return bad("s3 bucket %q is not a valid bucket name", c.S3Bucket)
	case c.EdgePort < -1 || c.edgePort() > 65535:
		return bad("edge port %d outside 1..65535 (-1: no edge)", c.edgePort())
	case c.edgePort() > 0 && c.isNodePort(c.edgePort()):
		return bad("edge port %d is a node's port", c.edgePort())
	case c.edgePort() > 0 && c.ObjectStore == "" && c.edgePort() == c.s3Port():
		return bad("edge port %d is the s3 server's port", c.edgePort())
	case c.edgePort() > 0 && c.EdgeCacheBytes < 64<<10:
		return bad("edge cache bytes %d is below 64 KiB", c.EdgeCacheBytes)
	case c.RestartDelay < 0:
		return bad("restart delay %s is negative", c.RestartDelay)
	case c.CrashLoopUptime < 0:
		return bad("crash loop uptime %s is negative", c.CrashLoopUptime)
	case c.CrashLoopCount < 1:
		return bad("crash loop count %d < 1", c.CrashLoopCount)
	case c.MaxRestartDelay < c.RestartDelay:
		return bad("max restart delay %s < restart delay %s", c.MaxRestartDelay, c.RestartDelay)
	case c.StopTimeout <= 0:
		return bad("stop timeout %s <= 0", c.StopTimeout)
	case c.ReadyPollInterval <= 0:
		return bad("ready poll interval %s <= 0", c.ReadyPollInterval)
	}
	return nil
}

// s3Port returns the embedded S3 server's port.
func (c Config) s3Port() int {
	if c.S3Port != 0 {
		return c.S3Port
	}
	return c.PortBase + S3PortOffset
}

// edgePort returns the edge's port, or -1 when there is no edge.
func (c Config) edgePort() int {
	switch c.EdgePort {
	case -1:
		return -1
	case 0:
		return c.PortBase + EdgePortOffset
	}
	return c.EdgePort
}

// isNodePort reports whether port is a node's API or Raft port.
func (c Config) isNodePort(port int) bool {
	i := port - c.PortBase
	return (i >= 1 && i <= c.Nodes) || (i > RaftPortOffset && i <= RaftPortOffset+c.Nodes)
}

// minBackoff replaces a zero RestartDelay as the base of the crash-loop
// backoff, so that RestartDelay = 0 still backs off.
const minBackoff = 100 * time.Millisecond

// restartDelay returns the wait before the next start after quick
// consecutive quick exits (quick is 0 after a run of CrashLoopUptime or more).
func (c Config) restartDelay(quick int) time.Duration {
	if quick < c.CrashLoopCount {
		return c.RestartDelay
	}
	d := c.RestartDelay
	if d <= 0 {
		d = minBackoff
	}
	for i := c.CrashLoopCount; i <= quick && d < c.MaxRestartDelay; i++ {
		d *= 2
	}
	return min(d, c.MaxRestartDelay)
}
