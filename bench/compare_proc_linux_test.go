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

func TestProcCPUSeconds(t *testing.T) {
	t.Parallel()
	// Burn CPU until this process has used at least 20 ms (two ticks).
	x := 0
	for s, _ := procCPUSeconds(os.Getpid()); s < 0.02; s, _ = procCPUSeconds(os.Getpid()) {
		for i := range 1 << 20 {
			x += i
		}
	}
	s, err := procCPUSeconds(os.Getpid())
	if err != nil || s < 0.02 {
		t.Errorf("procCPUSeconds = %v, %v (x %d)", s, err, x)
	}
	if _, err := procCPUSeconds(-1); err == nil {
		t.Error("procCPUSeconds of no process succeeded")
	}
}
