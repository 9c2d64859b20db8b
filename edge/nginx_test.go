package edge

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// EnvRequireNginx makes a missing nginx fail TestEdge_NginxCache instead
// of skipping it (.ci/run installs nginx and sets it).
const EnvRequireNginx = "GRAFT_REQUIRE_NGINX"

const nginxConf = `worker_processes 1;
pid nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path tmp/body;
  proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi;
  scgi_temp_path tmp/scgi;
  proxy_cache_path cache levels=1:2 keys_zone=graft:1m max_size=64m inactive=60m use_temp_path=off;
  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass %s;
      proxy_http_version 1.1;
      proxy_cache graft;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 60s;
      proxy_cache_lock_age 60s;
      add_header X-Cache-Status $upstream_cache_status always;
    }
  }
}
`

// startNginx runs Debian's nginx as a caching reverse proxy in front of
// upstream, unprivileged, and returns its base URL.
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv(EnvRequireNginx) != "" {
			t.Fatalf("nginx not found and %s is set: apt-get install -y nginx", EnvRequireNginx)
		}
		t.Skipf("nginx not installed (apt-get install -y nginx; set %s=1 to make this a failure)", EnvRequireNginx)
	}
	dir, err := os.MkdirTemp("", "graft-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for _, d := range []string{"tmp", "cache", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, port, upstream), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "-p", dir + "/", "-c", conf, "-e", "stderr", "-g", "daemon off;"}
	if os.Geteuid() == 0 {
		// nginx as root would switch its workers to another user; run it
		// all as nobody instead, in a directory nobody may write.
		for _, d := range []string{dir, filepath.Join(dir, "tmp"), filepath.Join(dir, "cache"), filepath.Join(dir, "logs")} {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
		args = append([]string{"runuser", "-u", "nobody", "--"}, args...)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// Its own process group, so the cleanup reaches nginx's master and
	// worker behind runuser.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM) // nginx: fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("nginx exited: %s", stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// protoReadURL is the Connect GET URL of a binary ReadPages request.
func protoReadURL(base string, m *graftv1.ReadPagesRequest) string {
	b, _ := proto.Marshal(m)
	return base + "/graft.v1.VolumeService/ReadPages?connect=v1&encoding=proto&base64=1&message=" + url.QueryEscape(base64.RawURLEncoding.EncodeToString(b))
}

// TestEdge_NginxCache puts a stock nginx (proxy_cache, proxy_cache_lock
// on) in front of the edge: 20 concurrent identical fixed-LSN GETs reach
// the edge once, and every one of them gets the cluster's bytes.
func TestEdge_NginxCache(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, 2*time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	front := startNginx(t, te.URL)
	vid := volume.MustNewID()
	cl := te.client(t)
	commitPages(t, ctx, cl, vid, 0, 4, 1, 2, 3)
	head := commitPages(t, ctx, cl, vid, 1, 4, 2)
	idxs := []volume.PageIdx{3, 2, 1, 4}
	wsnap, want, err := c.Client().ReadPages(ctx, vid, head, idxs, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}

	u := protoReadURL(front, &graftv1.ReadPagesRequest{Vid: vid.String(), Lsn: uint64(head), Pages: []uint32{3, 2, 1, 4}})
	before := te.requests("ReadPages", "ok")
	const n = 20
	bodies := make([][]byte, n)
	status := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("GET %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			bodies[i], _ = io.ReadAll(resp.Body)
			status[i] = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Cache-Status"))
			if resp.StatusCode != 200 {
				t.Errorf("GET %d: %d %s", i, resp.StatusCode, bodies[i])
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := te.requests("ReadPages", "ok") - before; got != 1 {
		t.Fatalf("%d concurrent identical GETs reached the edge %v times, want 1 (cache statuses %s)", n, got, strings.Join(status, ", "))
	}
	for i, b := range bodies {
		var m graftv1.ReadPagesResponse
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatalf("GET %d: body: %v", i, err)
		}
		if m.GetSnapshot().GetLsn() != uint64(wsnap.LSN) || m.GetSnapshot().GetPageCount() != wsnap.PageCount || len(m.GetPages()) != len(want) {
			t.Fatalf("GET %d: snapshot %v, cluster %+v", i, m.GetSnapshot(), wsnap)
		}
		for j, p := range m.GetPages() {
			if p.GetIdx() != uint32(want[j].Idx) || p.GetLsn() != uint64(want[j].LSN) || !bytes.Equal(p.GetData(), want[j].Data) {
				t.Fatalf("GET %d page %d: version %d, cluster %d (bytes equal: %v)", i, p.GetIdx(), p.GetLsn(), want[j].LSN, bytes.Equal(p.GetData(), want[j].Data))
			}
		}
	}
	t.Logf("cache statuses: %s", strings.Join(status, ", "))
}
