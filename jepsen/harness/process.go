package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is one run of a node or of the object store. Its waiter
// goroutine, owned by the Cluster, reaps it and closes done.
type process struct {
	name    string // "n1", ..., "s3"
	node    int    // index, -1 for the object store
	cmd     *exec.Cmd
	pid     int
	logPath string
	done    chan struct{}
	status  string // how it ended; set before done closes

	// expected is set before the harness signals the process to end, so
	// that its exit is not reported as unexpected.
	expected atomic.Bool
}

// Exit is a process exit the harness did not cause: a crash, a failed
// start, or a race report (a -race build exits with status 66).
type Exit struct {
	// Node is the node's index, -1 for the object store or an edge.
	Node int
	// Name is "n{i+1}", "s3" or "e{k+1}".
	Name string
	PID  int
	// Status is how it ended, as os.ProcessState.String says.
	Status string
	Time   time.Time
}

// spawn starts the graft executable bin with args in its own process
// group, its output appended to logPath, and a waiter that reaps it.
func (c *Cluster) spawn(bin, name string, node int, logPath string, args []string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== harness %s: start %s: %s\n", time.Now().Format(time.RFC3339Nano), name, bin+" "+strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f // an *os.File goes to the child as is: no copying goroutine
	cmd.Env = append(os.Environ(), c.cfg.Env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, node: node, cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, done: make(chan struct{})}
	c.log.Info("process started", "proc", name, "pid", p.pid)
	c.wg.Go(func() { c.reap(p) })
	return p, nil
}

// reap waits for p to end, notes how in its log, and records an exit the
// harness did not cause.
func (c *Cluster) reap(p *process) {
	_ = p.cmd.Wait() // the status says how it ended
	p.status = p.cmd.ProcessState.String()
	if f, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "=== harness %s: %s pid %d ended: %s\n", time.Now().Format(time.RFC3339Nano), p.name, p.pid, p.status)
		f.Close()
	}
	if p.expected.Load() {
		c.log.Info("process ended", "proc", p.name, "pid", p.pid, "status", p.status)
	} else {
		c.log.Warn("process exited unexpectedly", "proc", p.name, "pid", p.pid, "status", p.status, "log", p.logPath)
		c.exitMu.Lock()
		c.exits = append(c.exits, Exit{Node: p.node, Name: p.name, PID: p.pid, Status: p.status, Time: time.Now()})
		c.exitMu.Unlock()
	}
	close(p.done)
}

// alive reports whether p has not been reaped yet.
func (p *process) alive() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to p's whole process group.
func (p *process) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal %s (pid %d): %w", p.name, p.pid, os.ErrProcessDone)
		}
		return fmt.Errorf("signal %s (pid %d): %w", p.name, p.pid, err)
	}
	return nil
}

// kill SIGKILLs p's process group and waits until p is reaped.
func (p *process) kill() error {
	p.expected.Store(true)
	if err := p.signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done // SIGKILL cannot be caught or ignored
	return nil
}

// stop sends SIGTERM (and SIGCONT, in case it is paused) to p's group,
// then, once timeout passes, SIGQUIT (a goroutine dump into its log) and a
// second later SIGKILL (at once if ctx is done), and waits until p is
// reaped. It reports whether p had to be killed.
func (p *process) stop(ctx context.Context, timeout time.Duration) (killed bool, err error) {
	p.expected.Store(true)
	if !p.alive() {
		return false, nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, err
	}
	_ = p.signal(syscall.SIGCONT)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return false, nil
	case <-t.C:
		// A Go process prints every goroutine's stack on SIGQUIT (to its
		// log): the evidence of why it did not stop.
		_ = p.signal(syscall.SIGQUIT)
		select {
		case <-p.done:
			return true, nil
		case <-time.After(time.Second):
		}
	case <-ctx.Done():
	}
	return true, p.kill()
}

// waitListening waits until addr accepts TCP connections, p exits, or ctx
// is done.
func waitListening(ctx context.Context, p *process, addr string, poll time.Duration) error {
	for {
		d := net.Dialer{Timeout: poll}
		if conn, err := d.DialContext(ctx, "tcp", addr); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s (pid %d) %w before listening on %s: %s (see %s)", p.name, p.pid, ErrExited, addr, p.status, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s (pid %d) not listening on %s: %w", p.name, p.pid, addr, ctx.Err())
		case <-time.After(poll):
		}
	}
}
