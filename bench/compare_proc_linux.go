package bench

import (
	"os"
	"syscall"
)

// procAttr puts a server process the comparison starts in its own process
// group (a terminal's Ctrl-C reaches only the comparison, which then stops
// its servers in order) and has the kernel SIGKILL it if the comparison
// dies first, so no run leaves a cluster behind. Pdeathsig follows the
// thread that forked; the Go runtime does not end threads that run
// ordinary goroutines, and nothing here locks one.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup SIGKILLs p's process group (p leads it, see procAttr), so the
// children of a supervisor such as graft dev go too.
func killGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
