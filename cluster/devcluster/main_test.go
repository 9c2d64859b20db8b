package devcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/cluster/devcluster"
	"github.com/graft-cluster/graft/objstore"
)

// helperEnv makes the test binary act as a helper process instead of running
// tests: "node" is a fake `graft node`, "supervisor" runs a whole cluster of
// fake nodes (see runSupervisorHelper).
const helperEnv = "GO_WANT_HELPER"

// The fake node's mode comes from the extra argument modeFlag (every node)
// or, without it, from the file DIR/modeFile (one node).
const (
	modeFlag       = "--fake-mode"
	modeFile       = "fake-mode"
	modeCrash      = "crash"       // exit 3 at once
	modeIgnoreTerm = "ignore-term" // ignore SIGTERM; only SIGKILL ends it
	modeNotReady   = "not-ready"   // /readyz answers 503
	// modeFlushOnStop writes stopped/{id}/{pid} to the --object-store store
	// on SIGTERM, as a real node's final flush would.
	modeFlushOnStop = "flush-on-stop"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "node":
		os.Exit(runFakeNode(os.Args[1:]))
	case "supervisor":
		os.Exit(runSupervisorHelper())
	}
	// Every process the tests start inherits this and acts as a fake node.
	if err := os.Setenv(helperEnv, "node"); err != nil {
		fmt.Fprintln(os.Stderr, "set helper env:", err)
		os.Exit(2)
	}
	// Under -race a process sleeps 1s in exit by default, so a fake node
	// would take that long to stop after SIGTERM; a real node does not.
	if err := os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")); err != nil {
		fmt.Fprintln(os.Stderr, "set GORACE:", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// runFakeNode imitates `graft node`: it records its arguments in
// DIR/args.json, prints a line on stdout and one on stderr, serves
// GET /readyz on --api-addr and exits 0 on SIGTERM.
func runFakeNode(args []string) int {
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		if len(args[i]) > 2 && args[i][:2] == "--" {
			flags[args[i]] = args[i+1]
		}
	}
	id, dir, apiAddr, mode := flags["--id"], flags["--dir"], flags["--api-addr"], flags[modeFlag]
	if len(args) == 0 || args[0] != "node" || id == "" || dir == "" || apiAddr == "" {
		fmt.Fprintf(os.Stderr, "fake node: bad args %q\n", args)
		return 2
	}
	if mode == "" {
		if b, err := os.ReadFile(filepath.Join(dir, modeFile)); err == nil {
			mode = string(b)
		}
	}
	if err := writeJSON(filepath.Join(dir, "args.json"), args); err != nil {
		fmt.Fprintln(os.Stderr, "fake node:", err)
		return 2
	}
	fmt.Printf("fake node %s up pid=%d\n", id, os.Getpid())
	fmt.Fprintf(os.Stderr, "fake node %s stderr\n", id)
	if mode == modeCrash {
		return 3
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if mode == modeIgnoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := listen(ctx, apiAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake node:", err)
		return 2
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if mode == modeNotReady && notReady(dir) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		fmt.Fprintln(os.Stderr, "fake node: serve:", err)
		return 2
	case <-ctx.Done():
	}
	fmt.Printf("fake node %s stopping\n", id)
	if mode == modeFlushOnStop {
		if err := flushOnStop(flags["--object-store"], id); err != nil {
			fmt.Fprintf(os.Stderr, "fake node %s: flush on stop: %v\n", id, err)
		} else {
			fmt.Printf("fake node %s flushed on stop\n", id)
		}
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	<-serveErr
	return 0
}

// flushOnStop writes the object stopped/{id}/{pid} to the store at url.
func flushOnStop(url, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := objstore.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.PutIfAbsent(ctx, fmt.Sprintf("stopped/%s/%d", id, os.Getpid()), []byte("bye"))
}

// notReady reports whether a not-ready node is still not ready: with the
// mode from --fake-mode for good, with the mode from DIR/modeFile until the
// file says otherwise.
func notReady(dir string) bool {
	if slices.Contains(os.Args, modeFlag) {
		return true
	}
	b, err := os.ReadFile(filepath.Join(dir, modeFile))
	return err == nil && string(b) == modeNotReady
}

// listen retries briefly: a restarted node may race the kernel releasing
// its predecessor's socket.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return ln, err
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Environment of the supervisor helper.
const (
	envDir      = "DEVCLUSTER_TEST_DIR"
	envPortBase = "DEVCLUSTER_TEST_PORT_BASE"
)

// runSupervisorHelper runs a cluster of fake nodes in Dir envDir on port base
// envPortBase, writes their pids to DIR/pids.json once ready, and runs until
// killed.
func runSupervisorHelper() int {
	if err := os.Setenv(helperEnv, "node"); err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 2
	}
	cfg := devcluster.DefaultConfig()
	cfg.Binary = os.Args[0]
	cfg.Dir = os.Getenv(envDir)
	base, err := strconv.Atoi(os.Getenv(envPortBase))
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 2
	}
	cfg.PortBase = base
	c, err := devcluster.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 2
	}
	ctx := context.Background()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	readyCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.WaitReady(readyCtx); err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 2
	}
	pids := map[string]int{}
	for _, id := range c.NodeIDs() {
		pids[id] = c.PID(id)
	}
	if err := writeJSON(filepath.Join(cfg.Dir, "pids.json"), pids); err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 2
	}
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 2
	}
	return 0
}
