//go:build unix

package devcluster_test

import (
	"syscall"
	"testing"
)

// A terminal's Ctrl-C goes to its foreground process group; the nodes must
// not be in it, so that only the supervisor gets SIGINT and stops them in
// order.
func TestCluster_Run_putsEveryNodeInItsOwnProcessGroup(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, nil)
	tc.start(t)
	tc.waitReady(t)
	ours := syscall.Getpgrp()
	for id, pid := range tc.pids(t) {
		pgid, err := syscall.Getpgid(pid)
		if err != nil {
			t.Fatalf("getpgid %s (pid %d): %v", id, pid, err)
		}
		if pgid != pid || pgid == ours {
			t.Errorf("%s: pgid %d, want its own group %d (the supervisor's is %d)", id, pgid, pid, ours)
		}
	}
}
