package main

import (
	"bytes"
	"context"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"4096": 4096, "256MiB": 256 << 20, "1GiB": 1 << 30, "64KiB": 64 << 10, "2M": 2 << 20, "3 GB": 3 << 30, "10B": 10,
	} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GiB", "12XB", "99999999999GiB"} {
		if got, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestRunEdge_Validate(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"edge", "--listen", "127.0.0.1:0"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "no upstream endpoints") {
		t.Fatalf("graft edge without --upstream: %v", err)
	}
	err = run(context.Background(), []string{"edge", "--upstream", "http://127.0.0.1:1", "--cache-bytes", "lots"}, &out, &errOut)
	if err == nil {
		t.Fatalf("graft edge --cache-bytes lots: no error")
	}
}

// graft edge sets the process's Go memory limit: 1.25 x --cache-bytes +
// 48 MiB by default, --memory-limit when given, none with 0.
func TestRunEdge_MemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the edge stops as soon as it serves
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{nil, 256<<20 + 64<<20 + 48<<20},
		{[]string{"--cache-bytes", "64MiB"}, 64<<20 + 16<<20 + 48<<20},
		{[]string{"--memory-limit", "300MiB"}, 300 << 20},
		{[]string{"--memory-limit", "0"}, math.MaxInt64},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"edge", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"}, tc.args...)
		if err := run(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("%v: memory limit %d, want %d", tc.args, got, tc.want)
		}
	}
}
