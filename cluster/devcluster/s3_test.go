//go:build unix

package devcluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/cluster/devcluster"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/fakes3"
)

// msgs returns the msg of every supervisor log record, in order.
func (l *logRecords) msgs(t testing.TB) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var rec struct{ Msg string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("decode log record %q: %v", sc.Text(), err)
		}
		out = append(out, rec.Msg)
	}
	return out
}

func openStore(t testing.TB, url string) objstore.Store {
	t.Helper()
	st, err := objstore.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("objstore.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestCluster_Run_embeddedS3(t *testing.T) {
	t.Parallel()

	t.Run("serves the nodes' store from before they start until after they stop", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, func(c *devcluster.Config) { c.ExtraArgs = []string{modeFlag, modeFlushOnStop} })
		s3, ok := tc.EmbeddedS3()
		wantS3 := devcluster.S3Server{
			Endpoint: "http://127.0.0.1:" + strconv.Itoa(tc.cfg.PortBase+devcluster.S3PortOffset),
			Bucket:   "graft",
			Dir:      filepath.Join(tc.cfg.Dir, "s3"),
		}
		if !ok || s3 != wantS3 {
			t.Fatalf("EmbeddedS3 = %+v, %v; want %+v, true", s3, ok, wantS3)
		}
		tc.start(t)
		tc.waitReady(t)

		// The URL the nodes got works through the real S3 client, and plain
		// HTTP (curl) lists the bucket.
		st := openStore(t, tc.ObjectStore())
		if err := st.Put(t.Context(), "from-test", []byte("hello")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		resp, err := http.Get(s3.Endpoint + "/")
		if err != nil {
			t.Fatalf("ListBuckets: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<Name>graft</Name>") {
			t.Errorf("ListBuckets = %s %s", resp.Status, body)
		}

		pids := tc.pids(t)
		if err := tc.stop(t); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		// Every node reached the store while stopping.
		for id := range pids {
			if line := id + " | fake node " + id + " flushed on stop\n"; !strings.Contains(tc.out.String(), line) {
				t.Errorf("LogOutput lacks %q", line)
			}
		}
		msgs := tc.logs.msgs(t)
		started, stopped := slices.Index(msgs, "s3 server started"), slices.Index(msgs, "s3 server stopped")
		firstNode, lastNode := slices.Index(msgs, "node started"), -1
		for i, m := range msgs {
			if m == "node stopped" {
				lastNode = i
			}
		}
		if started < 0 || stopped < 0 || !(started < firstNode && lastNode < stopped) {
			t.Errorf("supervisor log order %q: want s3 server started before the nodes and stopped after them", msgs)
		}
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s3.Endpoint, "http://"), time.Second); err == nil {
			_ = c.Close()
			t.Errorf("s3 server still accepts connections after Run returned")
		}

		// The objects outlive the server, in Dir/s3.
		srv, err := fakes3.Serve(t.Context(), mustListen(t), s3.Dir, s3.Bucket, nil)
		if err != nil {
			t.Fatalf("reopen %s: %v", s3.Dir, err)
		}
		defer srv.Close(context.Background())
		objs, err := openStore(t, srv.URL("")).List(t.Context(), "")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		want := []string{"from-test"}
		for _, id := range tc.NodeIDs() {
			want = append(want, fmt.Sprintf("stopped/%s/%d", id, pids[id]))
		}
		if slices.Sort(want); !slices.Equal(keys, want) {
			t.Errorf("objects after restart = %q, want %q", keys, want)
		}
	})

	t.Run("an external object store replaces it", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, func(c *devcluster.Config) { c.ObjectStore = "mem://" })
		if s3, ok := tc.EmbeddedS3(); ok {
			t.Errorf("EmbeddedS3 = %+v, true; want false", s3)
		}
		if got := tc.ObjectStore(); got != "mem://" {
			t.Errorf("ObjectStore = %q, want mem://", got)
		}
		tc.start(t)
		tc.waitReady(t)
		for _, id := range tc.NodeIDs() {
			args := readArgs(t, tc.cfg.Dir, id)
			if i := slices.Index(args, "--object-store"); i < 0 || i+1 == len(args) || args[i+1] != "mem://" {
				t.Errorf("%s args %q lack --object-store mem://", id, args)
			}
		}
		if !portsFree([]int{tc.cfg.PortBase + devcluster.S3PortOffset}) {
			t.Errorf("s3 port taken although the object store is external")
		}
		if _, err := os.Stat(filepath.Join(tc.cfg.Dir, "s3")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat DIR/s3 = %v, want not exist", err)
		}
		if got := tc.logs.find(t, "s3 server started"); len(got) != 0 {
			t.Errorf("s3 server started: %v", got)
		}
	})

	t.Run("a taken port fails Run before any node starts", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, nil)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.cfg.PortBase+devcluster.S3PortOffset)))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		err = tc.Run(t.Context())
		if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "start embedded s3 server") {
			t.Fatalf("Run = %v, want a start embedded s3 server error wrapping EADDRINUSE", err)
		}
		if got := tc.logs.find(t, "node started"); len(got) != 0 {
			t.Errorf("nodes started: %v", got)
		}
	})

	t.Run("a directory in use fails Run before any node starts", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t, nil)
		s3, _ := tc.EmbeddedS3()
		other, err := fakes3.Serve(t.Context(), mustListen(t), s3.Dir, s3.Bucket, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(context.Background())
		if err := tc.Run(t.Context()); !errors.Is(err, fakes3.ErrDirLocked) {
			t.Fatalf("Run = %v, want ErrDirLocked", err)
		}
		if got := tc.logs.find(t, "node started"); len(got) != 0 {
			t.Errorf("nodes started: %v", got)
		}
		if !portsFree([]int{tc.cfg.PortBase + devcluster.S3PortOffset}) {
			t.Errorf("failed start left the s3 port taken")
		}
	})
}

// mustListen listens on a free loopback port.
func mustListen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
