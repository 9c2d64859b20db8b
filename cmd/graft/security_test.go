package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `graft dev --tls --auth` serves HTTPS with a throwaway CA in DIR/tls and
// requires tokens signed by DIR/auth/key; its banner prints an admin
// token. The CLI takes --ca and --token ($GRAFT_TOKEN); `graft token
// issue` prints the token alone on stdout; a volume-scoped write token
// commits through the edge, and `graft token revoke` makes every node and
// the edge refuse it.
func TestProcesses_DevTLSAuth(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	dev := startDev(t, "--dir", dir, "--port-base", strconv.Itoa(base), "--tls", "--auth")
	if got := dev.bannerLine(t, "tls:"); !strings.HasPrefix(got, "tls: on") {
		t.Errorf("banner tls line = %q", got)
	}
	if got := dev.bannerLine(t, "auth:"); !strings.HasPrefix(got, "auth: on") {
		t.Errorf("banner auth line = %q", got)
	}
	admin := strings.TrimPrefix(dev.bannerLine(t, "export GRAFT_TOKEN="), "export GRAFT_TOKEN=")
	ca := filepath.Join(dir, "tls", "ca.pem")
	node := fmt.Sprintf("https://127.0.0.1:%d", base+2)
	edgeURL := fmt.Sprintf("https://127.0.0.1:%d", base)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// graft runs the binary with $GRAFT_TOKEN=env; a failure's error is
	// its stderr.
	graft := func(env string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, graftBin, args...)
		cmd.Env = append(os.Environ(), "GRAFT_TOKEN="+env)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("%w: %s", err, errOut.String())
		}
		return out.String(), nil
	}
	code := func(err error) string {
		if err == nil {
			return "ok"
		}
		for _, c := range []string{"unauthenticated", "permission_denied"} {
			if strings.Contains(err.Error(), "graft: "+c+":") {
				return c
			}
		}
		return err.Error()
	}

	if _, err := graft(admin, "cluster", "status", "--endpoint", node, "--ca", ca); err != nil {
		t.Fatalf("status with the admin token from $GRAFT_TOKEN: %v", err)
	}
	if _, err := graft("", "cluster", "status", "--endpoint", node, "--ca", ca); code(err) != "unauthenticated" {
		t.Fatalf("status without a token: %v, want unauthenticated", err)
	}
	if _, err := graft(admin, "cluster", "status", "--endpoint", node); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("status without --ca: %v, want a certificate error", err)
	}
	// wait-ready takes --ca and the token like the other client commands:
	// /readyz over HTTPS, then the leader's commit index (a read call).
	if out, err := graft(admin, "cluster", "wait-ready", "--endpoint", node, "--ca", ca, "--timeout", "20s"); err != nil || !strings.Contains(out, "is ready and caught up") {
		t.Fatalf("wait-ready with --ca and the admin token: %q, %v", out, err)
	}

	vidOut, err := graft("", "volume", "create")
	if err != nil {
		t.Fatal(err)
	}
	vid := strings.TrimSpace(vidOut)
	tok, err := graft("", "token", "issue", "--key", filepath.Join(dir, "auth", "key"), "--scope", "write", "--volumes", vid[:8], "--ttl", "1h", "--id", "cli-w")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(tok), "\n"); len(lines) != 1 || strings.Count(lines[0], ".") != 2 {
		t.Fatalf("token issue stdout = %q, want the token alone", tok)
	}
	w := strings.TrimSpace(tok)
	if _, err := graft("", "volume", "commit", vid, "--page", "1=hi", "--endpoint", edgeURL, "--ca", ca, "--token", w); err != nil {
		t.Fatalf("commit through the edge with a write token: %v", err)
	}
	// The local-replica commands and graft sql take --ca and --token too:
	// a replica pulls and reads through the TLS edge, and a SQL
	// transaction on another replica pushes with the write token.
	rdir := filepath.Join(t.TempDir(), "replica")
	if _, err := graft("", "volume", "pull", vid, "--dir", rdir, "--endpoint", edgeURL, "--ca", ca); err == nil || !strings.Contains(err.Error(), "unauthenticated: no token") {
		t.Fatalf("volume pull --dir without a token: %v, want unauthenticated", err)
	}
	if _, err := graft(w, "volume", "pull", vid, "--dir", rdir, "--endpoint", edgeURL, "--ca", ca); err != nil {
		t.Fatalf("volume pull --dir with --ca and $GRAFT_TOKEN: %v", err)
	}
	if out, err := graft("", "volume", "read", vid, "--page", "1", "--dir", rdir, "--endpoint", edgeURL, "--ca", ca, "--token", w); err != nil || !strings.HasPrefix(out, "hi") {
		t.Fatalf("volume read --dir with --ca and --token: %.40q, %v", out, err)
	}
	sqlVid, err := graft("", "volume", "create")
	if err != nil {
		t.Fatal(err)
	}
	sqlVid = strings.TrimSpace(sqlVid)
	sw, err := graft("", "token", "issue", "--key", filepath.Join(dir, "auth", "key"), "--scope", "write", "--volumes", sqlVid, "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	sdir := filepath.Join(t.TempDir(), "sql")
	if _, err := graft("", "sql", sqlVid, "--dir", sdir, "--endpoint", node, "--ca", ca, "--token", strings.TrimSpace(sw),
		"CREATE TABLE t(x); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatalf("graft sql with --ca and --token: %v", err)
	}
	if out, err := graft(strings.TrimSpace(sw), "sql", sqlVid, "--dir", filepath.Join(t.TempDir(), "sql2"), "--endpoint", edgeURL, "--ca", ca,
		"SELECT x FROM t"); err != nil || !strings.Contains(out, "42") {
		t.Fatalf("graft sql on a second replica through the edge: %q, %v", out, err)
	}
	if _, err := graft("", "cluster", "flush", "--endpoint", node, "--ca", ca, "--token", w); code(err) != "permission_denied" {
		t.Fatalf("flush with a write token: %v, want permission_denied", err)
	}
	if _, err := graft(w, "token", "revoke", "cli-w", "--endpoint", node, "--ca", ca); code(err) != "permission_denied" {
		t.Fatalf("revoke with a write token: %v, want permission_denied", err)
	}
	if _, err := graft(admin, "token", "revoke", "cli-w", "--endpoint", node, "--ca", ca); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	for _, ep := range []string{edgeURL, fmt.Sprintf("https://127.0.0.1:%d", base+1), fmt.Sprintf("https://127.0.0.1:%d", base+3)} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, err := graft("", "volume", "info", vid, "--endpoint", ep, "--ca", ca, "--token", w)
			if code(err) == "unauthenticated" && strings.Contains(err.Error(), "revoked") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still takes the revoked token: %v", ep, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	dev.interrupt(t)
}
