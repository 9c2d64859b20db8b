package bench_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/graft-cluster/graft/bench"
)

// dirEntries returns the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestMeasureFsync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 20
	s, err := bench.MeasureFsync(context.Background(), dir, bench.DefaultFsyncSize, n)
	if err != nil {
		t.Fatalf("MeasureFsync: %v", err)
	}
	if s.Count != n || s.Errors != 0 {
		t.Errorf("Count, Errors = %d, %d; want %d, 0", s.Count, s.Errors, n)
	}
	if !(s.Max >= s.P50 && s.P50 >= s.Min && s.Min > 0) {
		t.Errorf("want Max >= P50 >= Min > 0, got %+v", s)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("probe file left behind: %v", names)
	}
}

func TestMeasureFsync_stopsWhenContextDone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bench.MeasureFsync(ctx, dir, 64, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("MeasureFsync = %v, want context.Canceled", err)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("probe file left behind: %v", names)
	}
}

func TestMeasureFsync_rejectsBadArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		size, n int
	}{
		{"zero size", 0, 10},
		{"zero count", 64, 0},
		{"negative count", 64, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bench.MeasureFsync(context.Background(), t.TempDir(), tt.size, tt.n)
			if !errors.Is(err, bench.ErrInvalidArgument) {
				t.Fatalf("MeasureFsync(size %d, n %d) = %v, want ErrInvalidArgument", tt.size, tt.n, err)
			}
		})
	}
	if _, err := bench.MeasureFsync(context.Background(), t.TempDir()+"/missing", 64, 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MeasureFsync in a missing dir = %v, want os.ErrNotExist", err)
	}
}
