package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/volume"
)

func TestUsesDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"VID", "--dir", "d"}, true},
		{[]string{"VID", "-dir=d"}, true},
		{[]string{"--dir=d", "VID"}, true},
		{[]string{"VID", "--page", "1"}, false},
		{[]string{"VID", "--page", "1=dir"}, false},
		{[]string{"VID", "--", "--dir"}, false},
		{[]string{"VID", "--directory", "d"}, false},
	} {
		if got := usesDir(tc.args); got != tc.want {
			t.Errorf("usesDir(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// Bad --dir input is refused before any request (no cluster runs here).
func TestVolumeReplica_BadFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	vid := volume.MustNewID().String()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"volume", "status", vid}, "--dir is required"},
		{[]string{"volume", "push", vid}, "--dir is required"},
		{[]string{"volume", "status", "not-a-vid", "--dir", dir}, "volume: invalid"},
		{[]string{"volume", "write", vid, "--dir", dir}, "nothing to write"},
		{[]string{"volume", "write", vid, "--dir", dir, "--page", "0=x"}, "pages start at 1"},
		{[]string{"volume", "write", vid, "--dir", dir, "--at", "2", "--page", "1=x", "--file", filepath.Join(dir, "missing")}, "--file: open"},
		{[]string{"volume", "read", vid, "--dir", dir}, "--page (or --pages) is required"},
		{[]string{"volume", "read", vid, "--dir", dir, "--page", "1", "--pages", "1-2"}, "give --page or --pages, not both"},
		{[]string{"volume", "read", vid, "--dir", dir, "--pages", "0-2"}, "pages start at 1"},
	} {
		err := run(context.Background(), append(tc.args, "--endpoint", "http://127.0.0.1:1"), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("graft %s: %v; want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after bad flags only, --dir %s: %v; want it never created", dir, err)
	}
}
