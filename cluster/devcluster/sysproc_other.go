//go:build !unix

package devcluster

import (
	"os"
	"syscall"
)

// sysProcAttr returns nil: without process groups the children share the
// supervisor's console.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate kills p: there is no portable graceful stop signal here.
func terminate(p *os.Process) error { return p.Kill() }
