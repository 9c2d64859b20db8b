package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

func TestTodo_TwoReplicas(t *testing.T) {
	c := clustertest.Start(t, 3)
	ep := strings.Join(c.Endpoints(), ",")
	vid := volume.MustNewID().String()
	alice, bob := t.TempDir(), t.TempDir()
	todo := func(dir string, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(t.Context(), append([]string{"--dir", dir, "--endpoint", ep, vid}, args...), &out); err != nil {
			t.Fatalf("todo %v: %v", args, err)
		}
		return out.String()
	}
	todo(alice, "add", "buy", "milk")
	todo(bob, "add", "call", "mom") // bob's replica is behind until its pull
	todo(alice, "done", "2")
	want := "1 [ ] buy milk\n2 [x] call mom\n"
	for _, dir := range []string{alice, bob} {
		if got := todo(dir, "list"); got != want {
			t.Fatalf("list = %q, want %q", got, want)
		}
	}
}
