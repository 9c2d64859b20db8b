package devcluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
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
// API on PortBase+i and Raft on PortBase+RaftPortOffset+i.
const RaftPortOffset = 100

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

	// ExtraArgs are appended, in order, to every node's arguments.
	// Default none.
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
}

// DefaultConfig returns a Config with every default set; the caller fills in
// Binary and Dir.
func DefaultConfig() Config {
	return Config{
		Nodes:             3,
		Host:              "127.0.0.1",
		PortBase:          7000,
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
