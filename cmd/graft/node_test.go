package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The node's JSON config file takes object_store like the --object-store
// flag: a config holding it fails on the missing id, not on an unknown key.
func TestNode_ConfigObjectStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		config, want string
	}{
		{`{"object_store": "mem://"}`, "cluster config: id is required"},
		{`{"object_stor": "mem://"}`, `parse config`},
	} {
		path := filepath.Join(t.TempDir(), "node.json")
		if err := os.WriteFile(path, []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(graftBin, "node", "--config", path).CombinedOutput()
		if err == nil {
			t.Fatalf("graft node with config %s succeeded; want an error", tc.config)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("graft node with config %s: output %q, want it to mention %q", tc.config, out, tc.want)
		}
	}
}
