package sqlite

import (
	"os"
	osexec "os/exec"
	"strings"
	"testing"
)

// The planted bug graft_bug_vfs_own_counter (the own-commit counter
// exception leaks to later snapshots: a connection never flushes its cache
// after its first commit) is caught by
// TestVFS_ConnectionsSeeEachOthersCommits. The consistency suite's catalog
// row (jepsen.PlantedBugs, sqlite-bank) catches it in the cluster.
func TestVFS_PlantedOwnCounterIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sqlite tests with a planted bug")
	}
	if os.Getenv("GRAFT_PLANTED_CHILD") != "" {
		t.Skip("already the planted build")
	}
	cmd := osexec.Command("go", "test", "-count=1", "-tags", "graft_bug_vfs_own_counter", "-run", "^TestVFS_ConnectionsSeeEachOthersCommits$", ".")
	cmd.Env = append(os.Environ(), "GRAFT_PLANTED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the planted VFS bug was not caught:\n%s", out)
	}
	if !strings.Contains(string(out), "--- FAIL: TestVFS_ConnectionsSeeEachOthersCommits") {
		t.Fatalf("the planted build failed for another reason: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "vfs_test.go") {
			t.Logf("caught: %s", strings.TrimSpace(line))
			break
		}
	}
}
