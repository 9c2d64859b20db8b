package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// helperEnv makes the test binary act as a client process (see
// runPushHelper) instead of running tests.
const helperEnv = "GRAFT_REPLICA_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runPushHelper(mode, os.Args[len(os.Args)-3:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperResult is what a helper prints on success.
type helperResult struct {
	Status    string
	RemoteLSN volume.LSN
	Resent    bool
	Hash      volume.Hash
	// NextLSN is the remote LSN of the second push (mode "push").
	NextLSN volume.LSN
}

// killOnAck is a transport that SIGKILLs its own process once the cluster
// answered a Commit, before the client sees the answer: the push was sent
// and committed, and its ack is never received.
type killOnAck struct{ next http.RoundTripper }

func (k killOnAck) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := k.next.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/Commit") {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return resp, err
}

// runPushHelper is the client process: mode "commit-push-kill" commits
// three pages and pushes with killOnAck; mode "push" reopens the replica,
// commits a fourth page (so a push rebuilt from the local commits would
// differ from the one that was sent), and pushes twice, printing a
// helperResult.
func runPushHelper(mode string, args []string) error {
	ctx := context.Background()
	dir, endpoint := args[0], args[1]
	vid, err := volume.ParseID(args[2])
	if err != nil {
		return err
	}
	cfg := client.Config{Dir: dir, Endpoints: []string{endpoint}}
	if mode == "commit-push-kill" {
		cfg.HTTPClient = &http.Client{Transport: killOnAck{http.DefaultTransport}}
	}
	rt, err := client.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer rt.Close()
	v, err := rt.Volume(ctx, vid)
	if err != nil {
		return err
	}
	status := v.Status().String()
	first, last := volume.PageIdx(1), volume.PageIdx(3)
	if mode == "push" {
		first, last = 4, 4
	}
	{
		w := v.Writer()
		for i := first; i <= last; i++ {
			if err := w.WritePage(i, page(byte(0xc0+i))); err != nil {
				return err
			}
		}
		if _, err := w.Commit(ctx); err != nil {
			return err
		}
	}
	res, err := v.Push(ctx)
	if err != nil {
		return err
	}
	next, err := v.Push(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(helperResult{Status: status, RemoteLSN: res.RemoteLSN, Resent: res.Resent, Hash: res.Hash, NextLSN: next.RemoteLSN})
}

// A client process is SIGKILLed after its push was sent and committed and
// before it received the ack; restarted, its Push returns the same remote
// LSN and the volume's chain holds that commit once.
func TestVolume_PushKilledBeforeAck(t *testing.T) {
	c := clustertest.Start(t, 3)
	ctx := ctxT(t)
	dir := t.TempDir()
	vid := volume.MustNewID()
	helper := func(mode string) (*exec.Cmd, *bytes.Buffer, error) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", dir, c.Endpoint(1), vid.String())
		cmd.Env = append(os.Environ(), helperEnv+"="+mode)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil && mode == "push" {
			t.Logf("helper %s stderr: %s", mode, errb.String())
		}
		return cmd, &out, err
	}
	cmd, _, err := helper("commit-push-kill")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("client process: %v, want killed by SIGKILL", err)
	}
	rpc := c.Client()
	head, err := rpc.Snapshot(ctx, vid, 0, client.ReadOptions{})
	if err != nil || head.LSN != 1 {
		t.Fatalf("the killed push did not commit: head %+v, %v", head, err)
	}

	_, out, err := helper("push")
	if err != nil {
		t.Fatal(err)
	}
	var res helperResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if res.Status != client.StatusInterruptedPush.String() || !res.Resent || res.RemoteLSN != 1 || res.NextLSN != 2 {
		t.Fatalf("push after restart: %+v, want status interrupted_push, resent at remote LSN 1, then page 4 at 2", res)
	}
	_, commits, _, err := rpc.PullCommits(ctx, vid, 0, 0, 0, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 2 || commits[0].Hash != res.Hash || commits[0].LSN != 1 || commits[0].Graft.Len() != 3 || commits[1].Graft.Len() != 1 {
		t.Fatalf("chain: %d commits, want the killed push once at LSN 1 (3 pages), then page 4", len(commits))
	}
	_, pages, err := rpc.ReadPages(ctx, vid, 0, []volume.PageIdx{1, 2, 3, 4}, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if !bytes.Equal(p.Data, page(byte(0xc0+p.Idx))) {
			t.Fatalf("page %d: wrong bytes", p.Idx)
		}
	}
}
