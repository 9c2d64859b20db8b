//go:build unix && !linux

package harness

import "syscall"

// sysProcAttr puts the child in its own process group, so that signals can
// reach everything it runs. Without Pdeathsig (Linux only), a harness
// process that dies without Stop leaves its nodes running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
