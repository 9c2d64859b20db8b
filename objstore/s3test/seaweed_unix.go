//go:build unix

package s3test

import (
	"os/exec"
	"syscall"
	"time"
)

// setProcessGroup starts cmd in a process group of its own, so stopping it
// reaches every process it started, and (on Linux) has the kernel kill it
// when the test process dies without running its cleanups, as on a
// go test -timeout.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// stopProcessGroup sends SIGTERM to cmd's process group, then SIGKILL if
// cmd has not exited (closed exited) within grace, and waits for the exit.
func stopProcessGroup(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	pgid := cmd.Process.Pid // Setpgid: the group id is the leader's pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
	}
	// Also after a clean exit of the leader: nothing of the group survives.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}
