package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestClientCmd_Arguments runs client commands with wrong positional
// arguments: each is refused before any call, naming the command.
func TestClientCmd_Arguments(t *testing.T) {
	t.Setenv(EndpointEnv, "http://127.0.0.1:1") // nothing listens: a call would fail otherwise
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "status", "extra"}, `cluster status: unexpected arguments ["extra"]`},
		{[]string{"cluster", "flush", "x"}, `cluster flush: unexpected arguments ["x"]`},
		{[]string{"cluster", "wait-ready", "x"}, `cluster wait-ready: unexpected arguments ["x"]`},
		{[]string{"cluster", "add", "a", "b"}, `cluster add: want ID RAFT_ADDR API_ADDR, got ["a" "b"]`},
		{[]string{"cluster", "remove"}, `cluster remove: want ID, got []`},
		{[]string{"cluster", "step-down", "a", "b"}, `cluster step-down: want ID, got ["a" "b"]`},
		{[]string{"cluster", "unquarantine"}, `cluster unquarantine: want VID, got []`},
		{[]string{"cluster", "transfer", "a", "b"}, `cluster transfer: want at most one ID, got ["a" "b"]`},
		{[]string{"volume", "delete"}, `missing volume ID`},
		{[]string{"token", "revoke"}, `token revoke: want the token ID`},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("run %q: got error %v, want %q", tc.args, err, tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("run %q: printed %q on stdout", tc.args, stdout.String())
			}
		})
	}
}

// TestClientCmd_FlagsAfterArguments: cluster commands read flags after
// their positional arguments, as the volume commands do: the call goes to
// the --endpoint given after the ID (here a closed port: connection
// refused), not to the default, and the ID is not swallowed.
func TestClientCmd_FlagsAfterArguments(t *testing.T) {
	t.Setenv(EndpointEnv, "http://127.0.0.1:7001")
	for _, args := range [][]string{
		{"cluster", "remove", "n9", "--endpoint", "http://127.0.0.1:1", "--timeout", "2s"},
		{"cluster", "step-down", "n9", "--endpoint", "http://127.0.0.1:1", "--timeout", "2s"},
		{"cluster", "add", "n9", "--endpoint", "http://127.0.0.1:1", "127.0.0.1:9001", "127.0.0.1:9002", "--timeout", "2s"},
		{"cluster", "transfer", "n9", "--endpoint", "http://127.0.0.1:1", "--timeout", "2s"},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "dial tcp 127.0.0.1:1") {
				t.Fatalf("run %q: got error %v, want a failed call to the --endpoint after the ID (127.0.0.1:1)", args, err)
			}
		})
	}
	// "--" ends the flags: what follows is an argument even if it looks
	// like a flag.
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"cluster", "remove", "--endpoint", "http://127.0.0.1:1", "--", "-odd"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "dial tcp 127.0.0.1:1") {
		t.Fatalf("cluster remove -- -odd: %v", err)
	}
}

// TestClientCmd_Help: --help prints the command's usage and its flags,
// the client flags and the command's own, on stdout, and stops with no
// error.
func TestClientCmd_Help(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		flags []string
	}{
		{[]string{"cluster", "add", "--help"}, []string{"-endpoint", "-ca", "-token", "-json", "-timeout"}},
		{[]string{"cluster", "wait-ready", "--help"}, []string{"-endpoint", "-poll"}},
		{[]string{"volume", "log", "x", "--help"}, []string{"-consistency", "-min-lsn", "-limit"}},
		{[]string{"token", "revoke", "--help"}, []string{"-token", "-expires"}},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), tc.args, &stdout, &stderr); err != nil {
			t.Fatalf("run %q: %v", tc.args, err)
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "usage: graft "+tc.args[0]+" "+tc.args[1]) {
			t.Errorf("run %q: help starts %q", tc.args, firstLine(out))
		}
		for _, f := range tc.flags {
			if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
				t.Errorf("run %q: help lacks %s:\n%s", tc.args, f, out)
			}
		}
		if stderr.Len() > 0 {
			t.Errorf("run %q: stderr %q", tc.args, stderr.String())
		}
	}
}
