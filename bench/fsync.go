package bench

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Defaults for MeasureFsync: one 4 KiB page plus a small record header,
// timed 200 times.
const (
	DefaultFsyncSize  = 4096 + 64
	DefaultFsyncCount = 200
)

// MeasureFsync measures the disk floor of a durable log append. It creates a
// temporary file in dir, then n times appends size bytes at its end and
// fdatasyncs it (fdatasync(2) on Linux, File.Sync elsewhere), timing each
// append+sync pair; the Summary holds those n samples. The file grows on
// every append, so each sync also persists the new file size, as a log
// append without preallocation does. The file is removed before returning.
// When ctx is done between appends it stops and returns ctx's error.
func MeasureFsync(ctx context.Context, dir string, size, n int) (_ Summary, err error) {
	if size < 1 || n < 1 {
		return Summary{}, fmt.Errorf("measure fsync: size %d and count %d must be >= 1: %w", size, n, ErrInvalidArgument)
	}
	f, err := os.CreateTemp(dir, "graft-fsync-*.tmp")
	if err != nil {
		return Summary{}, fmt.Errorf("create probe file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close probe file: %w", cerr)
		}
		if rerr := os.Remove(f.Name()); rerr != nil && err == nil {
			err = fmt.Errorf("remove probe file: %w", rerr)
		}
	}()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	samples := make([]time.Duration, 0, n)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return Summary{}, fmt.Errorf("stop after %d of %d appends: %w", i, n, err)
		}
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return Summary{}, fmt.Errorf("append to probe file: %w", err)
		}
		if err := fdatasync(f); err != nil {
			return Summary{}, fmt.Errorf("fdatasync probe file: %w", err)
		}
		samples = append(samples, time.Since(start))
	}
	return Summarize(samples, 0), nil
}
