//go:build linux

package devcluster

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in its own process group, so that a terminal's
// Ctrl-C (sent to the foreground group) reaches only the supervisor, and asks
// the kernel to SIGKILL it when the supervisor dies.
//
// Pdeathsig fires when the OS thread that forked the child exits, not the
// process. The Go runtime only ends a thread when a goroutine exits while
// locked to it (runtime.LockOSThread), so start must never run on such a
// goroutine. The runtime closes the fork/prctl race itself: the child checks
// its parent after prctl and signals itself if the parent is already gone.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
}

// terminate asks p to shut down gracefully.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
