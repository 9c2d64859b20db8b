package jepsen

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestRun_RefusesOutInUse(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockOut(dir)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	// Run must refuse before it starts anything (no binary is needed).
	_, err = Run(context.Background(), Options{Out: dir, Binary: "/nonexistent/graft", Workload: "register"})
	if !errors.Is(err, ErrOutInUse) {
		t.Fatalf("Run into a locked --out: got %v, want ErrOutInUse", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("refusal %q does not name the holder's pid %d", err, os.Getpid())
	}
	unlock()
	again, err := lockOut(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
