package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		flag   int64
		buffer uint64
		want   int64
	}{
		{-1, 128 << 20, 224 << 20}, // the default: buffer + 96 MiB
		{-1, 0, 0},                 // unlimited buffer: no limit
		{0, 128 << 20, 0},          // off
		{300 << 20, 128 << 20, 300 << 20},
	} {
		if got := memoryLimit(tt.flag, tt.buffer); got != tt.want {
			t.Errorf("memoryLimit(%d, %d) = %d, want %d", tt.flag, tt.buffer, got, tt.want)
		}
	}
}
