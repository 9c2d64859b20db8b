package bench

import (
	"context"
	"fmt"
	"os"
	"time"
)

// MeasureFsync measures the disk floor of a durable log append: n times,
// append size bytes to a fresh file in dir and fdatasync it, timing each
// pair. The file is removed afterwards.
func MeasureFsync(ctx context.Context, dir string, size, n int) (Summary, error) {
	f, err := os.CreateTemp(dir, "graft-fsync-*")
	if err != nil {
		return Summary{}, fmt.Errorf("create probe file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	samples := make([]time.Duration, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return Summary{}, fmt.Errorf("append: %w", err)
		}
		if err := fdatasync(f); err != nil {
			return Summary{}, fmt.Errorf("fdatasync: %w", err)
		}
		samples = append(samples, time.Since(t0))
	}
	return Summarize(samples, 0), nil
}
