//go:build graft_crashpoints && unix

package client

import (
	"os"
	"syscall"
)

// crashPoint kills the process (SIGKILL, no cleanup) when
// GRAFT_CLIENT_CRASH names it: the process test of crash-safe pushes.
func crashPoint(name string) {
	if os.Getenv("GRAFT_CLIENT_CRASH") == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
