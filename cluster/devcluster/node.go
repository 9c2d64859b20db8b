package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// outputDrainTimeout bounds how long a reaped node's output is still read:
// a grandchild that inherited the pipe could otherwise hold it open forever.
const outputDrainTimeout = time.Second

// node is one cluster member: its fixed identity and the process currently
// running it.
type node struct {
	c        *Cluster
	id       string
	dir      string
	apiAddr  string
	raftAddr string
	log      *slog.Logger

	// logFile is Dir/n{i}/node.log, open while Run runs. Written only by the
	// output copier of the current process; copiers never overlap.
	logFile *os.File

	mu  sync.Mutex
	pid int // current process, 0 when none
}

// process is one run of a node. Its two goroutines (the output copier and
// the waiter) are owned by the process: done closes after both have ended.
type process struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	done    chan struct{}
	waitErr error // set before done closes
}

func (n *node) currentPID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pid
}

func (n *node) setPID(pid int) {
	n.mu.Lock()
	n.pid = pid
	n.mu.Unlock()
}

// openLog creates the node's state directory and opens node.log for append.
func (n *node) openLog() error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("create %s dir: %w", n.id, err)
	}
	f, err := os.OpenFile(n.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", n.id, err)
	}
	n.logFile = f
	return nil
}

func (n *node) closeLog() {
	if n.logFile == nil {
		return
	}
	if err := n.logFile.Close(); err != nil {
		n.log.Warn("close node log", "path", n.logPath(), "err", err)
	}
	n.logFile = nil
}

func (n *node) logPath() string { return filepath.Join(n.dir, "node.log") }

// start launches a new process for n with its output copied to LogOutput
// and node.log.
func (n *node) start() (*process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: create output pipe: %w", n.id, err)
	}
	cmd := exec.Command(n.c.cfg.Binary, n.c.args(n)...)
	cmd.Stdout = w // an *os.File is handed to the child as is: no copy goroutine in exec
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("start %s: %w", n.id, err)
	}
	_ = w.Close() // the child holds its own copy; EOF comes when it exits
	p := &process{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	n.setPID(p.pid)
	n.log.Info("node started", "pid", p.pid)

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		n.copyOutput(r)
	}()
	go func() {
		defer close(p.done)
		p.waitErr = cmd.Wait()
		n.setPID(0)
		t := time.NewTimer(outputDrainTimeout)
		select {
		case <-copied:
		case <-t.C:
			n.log.Warn("node output still open after exit; closing it", "pid", p.pid)
			_ = r.Close() // unblocks the copier's Read
			<-copied
		}
		t.Stop()
		_ = r.Close()
	}()
	return p, nil
}

// supervise owns p and its successors until ctx is done: it restarts the
// node whenever it exits, then stops the last process.
func (n *node) supervise(ctx context.Context, p *process) {
	cfg := n.c.cfg
	quick := 0 // consecutive runs shorter than CrashLoopUptime
	for {
		select {
		case <-ctx.Done():
			n.stop(p)
			return
		case <-p.done:
		}
		if ctx.Err() != nil {
			n.logExit(slog.LevelInfo, "node exited during shutdown", p)
			return
		}
		uptime := time.Since(p.started)
		if uptime < cfg.CrashLoopUptime {
			quick++
		} else {
			quick = 0
		}
		delay := cfg.restartDelay(quick)
		n.logExit(slog.LevelWarn, "node exited; restarting", p,
			"uptime", uptime, "quick_exits", quick, "restart_in", delay)
		for {
			if !sleepCtx(ctx, delay) {
				return
			}
			np, err := n.start()
			if err == nil {
				p = np
				break
			}
			quick++
			delay = cfg.restartDelay(quick)
			n.log.Error("restart node", "err", err, "quick_exits", quick, "retry_in", delay)
		}
	}
}

// stop sends SIGTERM to p, SIGKILL after StopTimeout, and waits until p is
// reaped.
func (n *node) stop(p *process) {
	n.log.Info("stopping node", "pid", p.pid)
	if err := terminate(p.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.log.Warn("signal node to stop", "pid", p.pid, "err", err)
	}
	t := time.NewTimer(n.c.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		n.log.Warn("node did not stop in time; killing it", "pid", p.pid, "stop_timeout", n.c.cfg.StopTimeout)
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			n.log.Warn("kill node", "pid", p.pid, "err", err)
		}
		<-p.done
	}
	n.logExit(slog.LevelInfo, "node stopped", p)
}

// logExit logs how the reaped process p ended.
func (n *node) logExit(level slog.Level, msg string, p *process, attrs ...any) {
	attrs = append([]any{"pid", p.pid}, attrs...)
	if ps := p.cmd.ProcessState; ps != nil {
		attrs = append(attrs, "status", ps.String(), "exit_code", ps.ExitCode())
	}
	var exitErr *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exitErr) {
		attrs = append(attrs, "err", p.waitErr)
	}
	n.log.Log(context.Background(), level, msg, attrs...)
}

// sleepCtx waits for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
