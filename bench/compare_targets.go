package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/tlsutil"
	"github.com/graft-cluster/graft/volume"
)

// loopback is where every server of a comparison listens.
const loopback = "127.0.0.1"

func hostPort(port int) string { return loopback + ":" + strconv.Itoa(port) }

// graftCell is how a graft target runs.
type graftCell struct {
	s3Latency time.Duration // added to every request of the embedded S3 server
	logStore  string        // graft node --raft-log-store
	nodeArgs  []string      // more flags for every node
	spread    bool          // client w talks to node w mod 3 only
	secure    bool          // graft dev --tls --auth: HTTPS against the dev CA, a write token per call
}

// runGraft runs a graft cell: `graft dev` (three graft node processes and
// the embedded S3 server), closed-loop commits through the graft client
// from this process, as RunCommit does. gc.secure runs it with --tls
// --auth: HTTPS verified against the dev CA and a write token on every call.
func (r *comparer) runGraft(ctx context.Context, name, dir string, w Workload, gc graftCell) (CellResult, error) {
	s3Latency, logStore, secure := gc.s3Latency, gc.logStore, gc.secure
	base := r.cfg.PortBase
	if err := checkPortsFree(base+1, base+2, base+3, base+101, base+102, base+103, base+301); err != nil {
		return CellResult{}, err
	}
	args := []string{"dev", "--dir", filepath.Join(dir, "cluster"), "--port-base", strconv.Itoa(base), "--log-level", "warn"}
	if s3Latency > 0 {
		args = append(args, "--s3-latency", s3Latency.String())
	}
	if secure {
		args = append(args, "--tls", "--auth")
	}
	args = append(args, "--", "--raft-log-store", logStore) // to every node
	args = append(args, r.cfg.GraftNodeArgs...)
	args = append(args, gc.nodeArgs...)
	start := time.Now()
	p, err := startProc("graft dev", filepath.Join(r.cfg.OutDir, name+".log"), r.cfg.GraftBin, args...)
	if err != nil {
		return CellResult{}, err
	}
	// SIGINT, as Ctrl-C on graft dev: it stops its nodes with SIGTERM.
	defer r.stop(p, os.Interrupt)
	eps := []string{"http://" + hostPort(base+1), "http://" + hostPort(base+2), "http://" + hostPort(base+3)}
	hc := client.DefaultHTTPClient()
	defer hc.CloseIdleConnections() // the cluster goes away with the cell
	var opts []client.Option
	if secure {
		sec, err := r.devSecurity(ctx, p, filepath.Join(dir, "cluster"))
		if err != nil {
			return CellResult{}, err
		}
		for i := range eps {
			eps[i] = "https://" + strings.TrimPrefix(eps[i], "http://")
		}
		hc.Transport.(*http.Transport).TLSClientConfig = sec.tls
		opts = append(opts, client.WithToken(sec.token))
	}
	for _, ep := range eps {
		if err := r.waitHTTPWith(ctx, p, hc, ep+"/readyz", nil); err != nil {
			return CellResult{}, err
		}
	}
	startup := time.Since(start)
	var cls []*client.Client
	if gc.spread {
		for _, ep := range eps {
			cl, err := client.New([]string{ep}, append(opts, client.WithHTTPClient(hc))...)
			if err != nil {
				return CellResult{}, err
			}
			cls = append(cls, cl)
		}
	} else {
		cl, err := client.New(eps, append(opts, client.WithHTTPClient(hc))...)
		if err != nil {
			return CellResult{}, err
		}
		cls = append(cls, cl)
	}
	cpu0 := nodesCPUSeconds(p.pid())
	var cell CellResult
	if w.Rate > 0 {
		cell, err = openLoop(ctx, w.Clients, w.Rate, r.cfg.Warmup, r.cfg.Duration, commitOp(cls, w.Clients, w.Pages))
	} else {
		cell, err = closedLoop(ctx, w.Clients, r.cfg.Warmup, r.cfg.Duration, commitOp(cls, w.Clients, w.Pages))
	}
	if err != nil {
		return CellResult{}, err
	}
	cell.PayloadBytes = RaftCommandBytes(w.Pages)
	cell.StartupSeconds = startup.Seconds()
	cell.Procs = graftProcs(p.pid())
	if n := cell.OpsPerSec * (r.cfg.Warmup + r.cfg.Duration).Seconds(); err == nil && n > 0 {
		cell.NodeCPUMSPerCommit = (nodesCPUSeconds(p.pid()) - cpu0) * 1000 / n
	}
	return cell, nil
}

// graftProcs reads the memory of graft dev's node processes (named by
// their --id) and of graft dev itself (the supervisor and embedded S3
// server), best effort.
func graftProcs(devPID int) []ProcMem {
	var out []ProcMem
	kids, _ := childPIDs(devPID)
	for _, pid := range kids {
		name := "graft node"
		if id := cmdlineFlag(pid, "--id"); id != "" {
			name += " " + id
		}
		if m, err := readProcMem(name, pid); err == nil {
			out = append(out, m)
		}
	}
	if m, err := readProcMem("graft dev (supervisor, embedded S3)", devPID); err == nil {
		out = append(out, m)
	}
	return out
}

// cmdlineFlag returns the value after flag in pid's command line, or "".
func cmdlineFlag(pid int, flag string) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	args := strings.Split(string(b), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// runEtcd runs an etcd cell: three etcd members with default settings
// (fsync on; 100 ms heartbeat, 1 s election timeout) but for a large
// backend quota, data on WorkDir's disk, loopback peer and client URLs,
// driven by the etcd load generator as a separate process.
func (r *comparer) runEtcd(ctx context.Context, name, dir string, w Workload) (CellResult, error) {
	base := r.cfg.PortBase
	var ports []int
	var initial, clientURLs, httpURLs []string
	for i := 1; i <= 3; i++ {
		ports = append(ports, base+400+i, base+410+i, base+420+i)
		initial = append(initial, fmt.Sprintf("e%d=http://%s", i, hostPort(base+410+i)))
		clientURLs = append(clientURLs, "http://"+hostPort(base+400+i))
		httpURLs = append(httpURLs, "http://"+hostPort(base+420+i))
	}
	if err := checkPortsFree(ports...); err != nil {
		return CellResult{}, err
	}
	start := time.Now()
	var members []*proc
	// SIGKILL: the data is thrown away, and a graceful stop of all members
	// at once only adds etcd's leadership-transfer timeout (about 7 s).
	defer func() {
		for _, m := range members {
			m.kill()
		}
	}()
	for i := 1; i <= 3; i++ {
		peerURL := "http://" + hostPort(base+410+i)
		clientURL := clientURLs[i-1]
		p, err := startProc(fmt.Sprintf("etcd e%d", i), filepath.Join(r.cfg.OutDir, fmt.Sprintf("%s-e%d.log", name, i)), r.cfg.EtcdBin,
			"--name", fmt.Sprintf("e%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("e%d", i)),
			// gRPC alone on the client URL, HTTP (/health) on its own, as
			// etcd recommends for production.
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--listen-client-http-urls", httpURLs[i-1],
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "graft-bench-"+name, "--initial-cluster-state", "new",
			"--quota-backend-bytes", strconv.FormatInt(r.cfg.EtcdQuotaBytes, 10),
			"--log-level", "warn")
		if err != nil {
			return CellResult{}, err
		}
		members = append(members, p)
	}
	for i, u := range httpURLs {
		if err := r.waitHTTP(ctx, members[i], u+"/health", []byte(`"health":"true"`)); err != nil {
			return CellResult{}, err
		}
	}
	startup := time.Since(start)
	out, err := r.runLoad(ctx, name, r.cfg.EtcdLoadBin,
		"--endpoints", strings.Join(clientURLs, ","), "--clients", strconv.Itoa(w.Clients), "--pages", strconv.Itoa(w.Pages),
		"--warmup", r.cfg.Warmup.String(), "--duration", r.cfg.Duration.String())
	if err != nil {
		return CellResult{}, err
	}
	var cell CellResult
	if err := json.Unmarshal(out, &cell); err != nil {
		return CellResult{}, fmt.Errorf("decode etcd-load output: %w", err)
	}
	cell.PayloadBytes = w.Pages * volume.PageSize
	cell.StartupSeconds = startup.Seconds()
	for _, m := range members {
		if pm, err := readProcMem(m.name, m.pid()); err == nil {
			cell.Procs = append(cell.Procs, pm)
		}
	}
	return cell, nil
}

// runLoad runs a load generator to completion and returns its stdout; its
// stderr goes to OutDir/NAME-load.log.
func (r *comparer) runLoad(ctx context.Context, name, bin string, args ...string) ([]byte, error) {
	lf, err := os.Create(filepath.Join(r.cfg.OutDir, name+"-load.log"))
	if err != nil {
		return nil, fmt.Errorf("create load log: %w", err)
	}
	defer lf.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, lf
	cmd.SysProcAttr = procAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = r.cfg.StopGrace
	if err := cmd.Run(); err != nil {
		tail, _ := os.ReadFile(lf.Name())
		return nil, fmt.Errorf("run %s: %w: %s", filepath.Base(bin), err, lastLine(tail))
	}
	return stdout.Bytes(), nil
}

// runRaft runs a bare-Raft cell: three `graft bench raft-peer` processes;
// the leader's control server runs the load.
func (r *comparer) runRaft(ctx context.Context, name, dir string, w Workload, logStore string) (CellResult, error) {
	base := r.cfg.PortBase
	var ports []int
	var peerArgs []string
	for i := 1; i <= 3; i++ {
		ports = append(ports, base+500+i, base+510+i)
		peerArgs = append(peerArgs, "--peer", fmt.Sprintf("r%d,%s", i, hostPort(base+500+i)))
	}
	if err := checkPortsFree(ports...); err != nil {
		return CellResult{}, err
	}
	start := time.Now()
	var peers []*proc
	defer func() { r.stopAll(peers, syscall.SIGTERM) }()
	for i := 1; i <= 3; i++ {
		args := append([]string{"bench", "raft-peer", "--id", fmt.Sprintf("r%d", i), "--dir", filepath.Join(dir, fmt.Sprintf("r%d", i)),
			"--raft-addr", hostPort(base + 500 + i), "--control-addr", hostPort(base + 510 + i), "--log-store", logStore}, peerArgs...)
		p, err := startProc(fmt.Sprintf("raft peer r%d", i), filepath.Join(r.cfg.OutDir, fmt.Sprintf("%s-r%d.log", name, i)), r.cfg.GraftBin, args...)
		if err != nil {
			return CellResult{}, err
		}
		peers = append(peers, p)
	}
	leader, err := r.waitRaftLeader(ctx, peers, base)
	if err != nil {
		return CellResult{}, err
	}
	startup := time.Since(start)
	u := fmt.Sprintf("http://%s/run?clients=%d&pages=%d&warmup=%s&duration=%s",
		hostPort(base+511+leader), w.Clients, w.Pages, r.cfg.Warmup, r.cfg.Duration)
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Warmup+r.cfg.Duration+r.cfg.StartTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, nil)
	if err != nil {
		return CellResult{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return CellResult{}, fmt.Errorf("run load on raft leader: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return CellResult{}, fmt.Errorf("read raft run result: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return CellResult{}, fmt.Errorf("raft leader r%d answered %s: %s", leader+1, resp.Status, strings.TrimSpace(string(body)))
	}
	var cell CellResult
	if err := json.Unmarshal(body, &cell); err != nil {
		return CellResult{}, fmt.Errorf("decode raft run result: %w", err)
	}
	cell.StartupSeconds = startup.Seconds()
	for _, p := range peers {
		if pm, err := readProcMem(p.name, p.pid()); err == nil {
			cell.Procs = append(cell.Procs, pm)
		}
	}
	return cell, nil
}

// waitRaftLeader polls the peers' /status until one is leader and every
// peer names it; it returns the leader's index in peers.
func (r *comparer) waitRaftLeader(ctx context.Context, peers []*proc, base int) (int, error) {
	deadline := time.Now().Add(r.cfg.StartTimeout)
	hc := &http.Client{Timeout: time.Second}
	last := "no answer yet"
	for {
		leader, known := -1, make([]string, 0, len(peers))
		for i, p := range peers {
			if err := exitedEarly(p); err != nil {
				return 0, err
			}
			st, err := raftStatus(ctx, hc, hostPort(base+511+i))
			if err != nil {
				last = err.Error()
				continue
			}
			if st.State == "Leader" {
				leader = i
			}
			known = append(known, st.Leader)
		}
		if leader >= 0 && len(known) == len(peers) && !slices.ContainsFunc(known, func(id string) bool { return id != fmt.Sprintf("r%d", leader+1) }) {
			return leader, nil
		}
		if leader < 0 && len(known) == len(peers) {
			last = "no leader elected yet"
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no raft leader agreed on within %s: %s", r.cfg.StartTimeout, last)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// exitedEarly returns an error if p, a server still starting, has exited.
func exitedEarly(p *proc) error {
	ok, err := p.exited()
	switch {
	case !ok:
		return nil
	case err == nil:
		return fmt.Errorf("%s exited with status 0 while starting (see its log)", p.name)
	default:
		return fmt.Errorf("%s exited while starting (see its log): %w", p.name, err)
	}
}

func raftStatus(ctx context.Context, hc *http.Client, addr string) (RaftPeerStatus, error) {
	var st RaftPeerStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("decode status of %s: %w", addr, err)
	}
	return st, nil
}

// runDisk runs the disk floor cell: one writer appends the workload's
// payload (its pages plus a 64-byte record header, DefaultFsyncSize for one
// page) to a fresh file in the cell's directory and fdatasyncs it, in the
// same closed loop and window as the other targets. Its latency is what no
// replicated commit on this disk can beat; its ops/s is that of one writer
// without group commit.
func (r *comparer) runDisk(ctx context.Context, dir string, w Workload) (_ CellResult, err error) {
	size := w.Pages*volume.PageSize + 64
	f, err := os.CreateTemp(dir, "graft-fsync-*.tmp")
	if err != nil {
		return CellResult{}, fmt.Errorf("create probe file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close probe file: %w", cerr)
		}
	}()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	cell, err := closedLoop(ctx, 1, r.cfg.Warmup, r.cfg.Duration, func(_ context.Context, _ int, n uint64) error {
		binary.BigEndian.PutUint64(buf, n)
		if _, err := f.Write(buf); err != nil {
			return fmt.Errorf("append to probe file: %w", err)
		}
		if err := fdatasync(f); err != nil {
			return fmt.Errorf("fdatasync probe file: %w", err)
		}
		return nil
	})
	cell.PayloadBytes = size
	return cell, err
}

// waitHTTP polls url until it answers 200 (with want in its body, when
// set), failing early if p exits and after StartTimeout.
func (r *comparer) waitHTTP(ctx context.Context, p *proc, url string, want []byte) error {
	return r.waitHTTPWith(ctx, p, &http.Client{Timeout: time.Second}, url, want)
}

// waitHTTPWith is waitHTTP through hc.
func (r *comparer) waitHTTPWith(ctx context.Context, p *proc, hc *http.Client, url string, want []byte) error {
	deadline := time.Now().Add(r.cfg.StartTimeout)
	var last string
	for {
		if err := exitedEarly(p); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && (want == nil || bytes.Contains(body, want)) {
				return nil
			}
			last = resp.Status + " " + strings.TrimSpace(string(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %s", url, r.cfg.StartTimeout, last)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// stop stops p and logs a forced kill.
func (r *comparer) stop(p *proc, sig os.Signal) {
	if err := p.stop(sig, r.cfg.StopGrace); err != nil {
		r.log.Warn("stop", "err", err)
	}
}

// stopAll stops procs in parallel and logs forced kills.
func (r *comparer) stopAll(procs []*proc, sig os.Signal) {
	if err := stopAll(procs, sig, r.cfg.StopGrace); err != nil {
		r.log.Warn("stop", "err", err)
	}
}

// etcdVersion returns the first line of `etcd --version`, or "".
func etcdVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.TrimPrefix(line, "etcd Version:"))
}

// sleepCtx sleeps d or until ctx ends, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lastLine returns the last non-empty line of b.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// devCredentials are what a client of `graft dev --tls --auth` needs.
type devCredentials struct {
	tls   *tls.Config
	token string
}

// devSecurity waits for the CA and signing key `graft dev --tls --auth`
// writes into dir before it starts its nodes, and returns a TLS config
// trusting the CA and a write token for every volume.
func (r *comparer) devSecurity(ctx context.Context, p *proc, dir string) (devCredentials, error) {
	caFile, keyFile := filepath.Join(dir, "tls", "ca.pem"), filepath.Join(dir, "auth", "key")
	deadline := time.Now().Add(r.cfg.StartTimeout)
	for {
		pool, perr := tlsutil.LoadPool(caFile)
		key, kerr := auth.LoadPrivateKey(keyFile)
		if perr == nil && kerr == nil {
			tok, _, err := auth.Issue(key, auth.IssueOptions{Scopes: []auth.Scope{auth.ScopeWrite}, Volumes: "*", TTL: 24 * time.Hour})
			if err != nil {
				return devCredentials{}, err
			}
			return devCredentials{tls: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, token: tok}, nil
		}
		if err := exitedEarly(p); err != nil {
			return devCredentials{}, err
		}
		if time.Now().After(deadline) {
			return devCredentials{}, fmt.Errorf("graft dev --tls --auth wrote no CA and key within %s: %w", r.cfg.StartTimeout, errors.Join(perr, kerr))
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return devCredentials{}, err
		}
	}
}
