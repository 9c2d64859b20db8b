package bench

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestProc_memoryAndKill(t *testing.T) {
	t.Parallel()
	p, err := startProc("sleep", filepath.Join(t.TempDir(), "sleep.log"), "sleep", "30")
	if err != nil {
		t.Fatalf("startProc: %v", err)
	}
	kids, err := childPIDs(os.Getpid())
	if err != nil || !slices.Contains(kids, p.pid()) {
		t.Errorf("childPIDs = %v, %v; want it to hold %d", kids, err, p.pid())
	}
	m, err := readProcMem("sleep", p.pid())
	if err != nil || m.HWMKiB <= 0 || m.RSSKiB <= 0 || m.RSSKiB > m.HWMKiB {
		t.Errorf("readProcMem = %+v, %v", m, err)
	}
	p.kill()
	if ok, _ := p.exited(); !ok {
		t.Error("process alive after kill")
	}
	if _, err := readProcMem("sleep", p.pid()); err == nil {
		t.Error("readProcMem of a reaped process succeeded")
	}
}
