package s3test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/graft-cluster/graft/objstore"
)

// SeaweedFS: an independent S3 server in a real process.
//
// StartSeaweed runs SeaweedFS's all-in-one `weed mini` (master, volume
// server, filer and S3 gateway in one process) on loopback ports, with
// SigV4 signature checking on and one identity. The weed binary is built
// from source by `bash scripts/seaweedfs.sh build` into bin/tools/weed;
// `make test` does that first and sets EnvWeedBin and EnvRequireSeaweed, so
// there the tests never skip.
const (
	// EnvWeedBin names the environment variable holding the path of the
	// weed binary. Unset, StartSeaweed looks for bin/tools/weed in the
	// repository (the directory of go.mod, searched upward from the test's
	// working directory).
	EnvWeedBin = "GRAFT_WEED_BIN"
	// EnvRequireSeaweed names the environment variable that, set to 1,
	// turns a missing weed binary (or -short) from a skip into a failure.
	EnvRequireSeaweed = "GRAFT_REQUIRE_SEAWEED"

	// SeaweedAccessKey and SeaweedSecretKey are the only credentials a
	// Seaweed accepts; requests signed with anything else get 403.
	SeaweedAccessKey = "graft-seaweed-key"
	SeaweedSecretKey = "graft-seaweed-secret"

	// seaweedStartTimeout bounds the wait for a started weed to serve S3
	// requests on the bucket. weed mini starts its admin server and
	// maintenance worker before creating buckets, which takes seconds, more
	// on a loaded machine.
	seaweedStartTimeout = 2 * time.Minute
	// seaweedStopTimeout is how long a stopping weed gets to exit after
	// SIGTERM before it is killed.
	seaweedStopTimeout = 10 * time.Second
	// seaweedStartAttempts is how many times StartSeaweed starts weed when
	// it exits at once, which it does when another process took one of
	// the free ports between their choice and weed's bind.
	seaweedStartAttempts = 3
	// repoModule is the module path of the repository's go.mod.
	repoModule = "github.com/graft-cluster/graft"
)

// Seaweed is a running SeaweedFS server holding one empty bucket.
type Seaweed struct {
	// Endpoint is the S3 API's base URL, http://127.0.0.1:port.
	Endpoint string
	// Bucket is the bucket the server was started with (Bucket).
	Bucket string
	// LogPath is the file weed's output goes to; tb.Cleanup prints it when
	// the test failed.
	LogPath string
}

// StartSeaweed starts weed mini with an empty bucket named Bucket, in a
// data directory below tb.TempDir, and waits until it serves S3 requests
// signed with SeaweedAccessKey and SeaweedSecretKey. tb.Cleanup stops it
// (its whole process group) and, if the test failed, logs its output.
//
// Without a weed binary StartSeaweed skips the test, saying how to build
// one; it fails instead when EnvRequireSeaweed is 1. Under -short it skips
// too (a start takes seconds), unless EnvRequireSeaweed is 1.
//
// Starting a server takes a few seconds: start one per test and give each
// subtest its own prefix (FreshURL), not a server each.
func StartSeaweed(tb testing.TB) *Seaweed {
	tb.Helper()
	required := os.Getenv(EnvRequireSeaweed) == "1"
	if testing.Short() && !required {
		tb.Skip("s3test: SeaweedFS integration test skipped in -short mode")
	}
	bin, err := weedBinary()
	if err != nil {
		msg := fmt.Sprintf("s3test: no SeaweedFS weed binary: %v.\n"+
			"Build it once with `bash scripts/seaweedfs.sh build` (several minutes; "+
			"`make test` does it), or point %s at one.", err, EnvWeedBin)
		if required {
			tb.Fatalf("%s (%s=1 is set, so this is a failure, not a skip)", msg, EnvRequireSeaweed)
		}
		tb.Skip(msg)
	}

	for attempt := 1; ; attempt++ {
		s, err := startSeaweed(tb, bin, attempt)
		if err == nil {
			return s
		}
		if !errors.Is(err, errWeedExited) || attempt == seaweedStartAttempts {
			tb.Fatalf("s3test: start SeaweedFS (%s): %v", bin, err)
		}
		tb.Logf("s3test: start SeaweedFS, attempt %d: %v; retrying on other ports", attempt, err)
	}
}

// URL returns the s3:// URL (see objstore.Open) of a store under prefix in
// the server's bucket, with the server's credentials.
func (s *Seaweed) URL(prefix string) string {
	q := url.Values{
		"endpoint":   {s.Endpoint},
		"region":     {"us-east-1"},
		"path_style": {"true"},
		"access_key": {SeaweedAccessKey},
		"secret_key": {SeaweedSecretKey},
	}
	u := url.URL{Scheme: "s3", Host: s.Bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	return u.String()
}

// FreshURL returns the URL of an empty store: one under a new random
// prefix.
func (s *Seaweed) FreshURL() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return s.URL("test-" + hex.EncodeToString(b[:]))
}

// errWeedExited reports a weed process that exited before it was ready.
var errWeedExited = errors.New("weed exited before it was ready")

// weedBinary returns the path of the weed binary to run.
func weedBinary() (string, error) {
	if p := os.Getenv(EnvWeedBin); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvWeedBin, p, err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "tools", "weed")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is unset and %w", EnvWeedBin, err)
	}
	return p, nil
}

// repoRoot returns the directory of the repository's go.mod, searched
// upward from the working directory (a test runs in its package's
// directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module "+repoModule+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s above the working directory", repoModule)
		}
		dir = parent
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer ln.Close() // held until all n are chosen, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// s3Identities is weed's -s3.config file: one identity with every right.
type s3Identities struct {
	Identities []s3Identity `json:"identities"`
}

type s3Identity struct {
	Name        string         `json:"name"`
	Credentials []s3Credential `json:"credentials"`
	Actions     []string       `json:"actions"`
}

type s3Credential struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

func startSeaweed(tb testing.TB, bin string, attempt int) (*Seaweed, error) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "seaweed-"+strconv.Itoa(attempt))
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(s3Identities{Identities: []s3Identity{{
		Name:        "graft",
		Credentials: []s3Credential{{AccessKey: SeaweedAccessKey, SecretKey: SeaweedSecretKey}},
		Actions:     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}})
	if err != nil {
		return nil, err
	}
	s3Config := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(s3Config, cfg, 0o600); err != nil {
		return nil, err
	}

	// Every port explicit: weed mini moves a busy default port elsewhere
	// silently, but fails on a busy explicit one (and then we retry).
	p, err := freePorts(10)
	if err != nil {
		return nil, err
	}
	master, volume, filer, s3, admin := p[0], p[1], p[2], p[3], p[4]
	args := []string{
		// Global flags: all logging to stderr, none to files in /tmp.
		"-logtostderr=true",
		"mini",
		"-dir=" + data,
		"-ip=127.0.0.1",
		"-ip.bind=127.0.0.1",
		"-master.telemetry=false",
		"-master.volumeSizeLimitMB=64",
		"-master.port=" + strconv.Itoa(master),
		"-master.port.grpc=" + strconv.Itoa(p[5]),
		"-volume.port=" + strconv.Itoa(volume),
		"-volume.port.grpc=" + strconv.Itoa(p[6]),
		"-filer.port=" + strconv.Itoa(filer),
		"-filer.port.grpc=" + strconv.Itoa(p[7]),
		"-s3.port=" + strconv.Itoa(s3),
		"-s3.port.grpc=" + strconv.Itoa(p[8]),
		"-s3.port.iceberg=0",
		"-s3.port.lance=0",
		"-s3.config=" + s3Config,
		"-webdav=false",
		"-admin.ui=false",
		"-admin.port=" + strconv.Itoa(admin),
		"-admin.port.grpc=" + strconv.Itoa(p[9]),
		"-admin.port.legacy=0",
		"-bucket=" + Bucket,
	}
	logPath := filepath.Join(dir, "weed.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// HOME and the working directory are where weed looks for
	// configuration files (security.toml, master.toml, ...): keep it from
	// finding the developer's.
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setProcessGroup(cmd)
	fmt.Fprintf(logFile, "s3test: starting %s %q\n", bin, args)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	s := &Seaweed{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(s3),
		Bucket:   Bucket,
		LogPath:  logPath,
	}
	stopped, logged := false, false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stopProcessGroup(cmd, exited, seaweedStopTimeout)
		removeSockets([]int{filer, s3}, []int{p[5], p[6], p[7], p[8], p[9]})
	}
	tb.Cleanup(func() {
		// The log before the shutdown, whose own lines would push out
		// those that tell why the test failed.
		if tb.Failed() && !logged {
			logTail(tb, logPath)
		}
		stop()
	})

	start := time.Now()
	if err := waitReady(s, exited, seaweedStartTimeout); err != nil {
		stop()
		if errors.Is(err, errWeedExited) {
			err = fmt.Errorf("%w (%v)", err, waitErr)
		}
		logTail(tb, logPath)
		logged = true
		return nil, err
	}
	tb.Logf("s3test: SeaweedFS S3 at %s ready in %v (log %s)", s.Endpoint, time.Since(start).Round(time.Millisecond), logPath)
	return s, nil
}

// waitReady polls until a List of the bucket succeeds: weed's S3 gateway
// answers, checks our signature and has created the bucket.
func waitReady(s *Seaweed, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := objstore.DefaultConfig()
	c.MaxAttempts = 1
	st, err := objstore.Open(ctx, s.URL(""), objstore.WithConfig(c))
	if err != nil {
		return err
	}
	defer st.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := st.List(lctx, "")
		lcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errWeedExited
		case <-ctx.Done():
			return fmt.Errorf("S3 at %s not ready after %v: last error: %w", s.Endpoint, timeout, err)
		case <-tick.C:
		}
	}
}

// removeSockets removes the Unix sockets weed mini creates in /tmp for the
// given HTTP and gRPC ports, which a killed weed leaves behind.
func removeSockets(httpPorts, grpcPorts []int) {
	for _, p := range httpPorts {
		for _, kind := range []string{"filer", "s3"} {
			_ = os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-%d.sock", kind, p))
		}
	}
	for _, p := range grpcPorts {
		for _, kind := range []string{"master", "volume", "filer", "s3", "admin"} {
			_ = os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", kind, p))
		}
	}
}

// logTail logs the last part of weed's log.
func logTail(tb testing.TB, path string) {
	tb.Helper()
	const maxLines = 200
	f, err := os.Open(path)
	if err != nil {
		tb.Logf("s3test: weed log: %v", err)
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*maxLines {
			lines = append(lines[:0], lines[len(lines)-maxLines:]...)
		}
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	tb.Logf("s3test: last %d lines of the weed log %s:\n%s", len(lines), path, b.String())
}
