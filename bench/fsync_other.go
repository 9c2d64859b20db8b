//go:build !linux

package bench

import "os"

// fdatasync falls back to File.Sync, which is fsync(2) (F_FULLFSYNC on
// macOS): at least as strong, so the floor measured here is pessimistic.
func fdatasync(f *os.File) error { return f.Sync() }
