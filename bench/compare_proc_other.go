//go:build !linux

package bench

import (
	"os"
	"syscall"
)

// procAttr returns nil: without Pdeathsig a comparison killed with SIGKILL
// may leave its servers running. The comparison targets Linux (it reads
// /proc for memory); elsewhere it runs without that safety net.
func procAttr() *syscall.SysProcAttr { return nil }

// killGroup kills p; without process groups its children are on their own.
func killGroup(p *os.Process) { _ = p.Kill() }
