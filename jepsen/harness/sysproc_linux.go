//go:build linux

package harness

import "syscall"

// sysProcAttr puts the child in its own process group, so that signals can
// reach everything it runs, and asks the kernel to SIGKILL it when the
// harness's process dies, so that a crashed or killed test leaves no node
// running.
//
// Pdeathsig fires when the OS thread that forked the child exits, not the
// process; the Go runtime only ends a thread when a goroutine exits while
// locked to it (runtime.LockOSThread), so a start must not run on such a
// goroutine.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
