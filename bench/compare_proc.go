package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proc is a server process the comparison started. Its owner calls stop
// exactly once; the goroutine that waits for the process ends with it.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes
	log  *os.File
}

// startProc starts bin with args, its stdout and stderr appended to
// logPath, in its own process group (see procAttr).
func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends sig, waits up to grace for the process to exit, then
// SIGKILLs its process group and waits for it. It returns an error only
// when the process had to be killed.
func (p *proc) stop(sig os.Signal, grace time.Duration) error {
	defer p.log.Close()
	if ok, _ := p.exited(); ok {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	killGroup(p.cmd.Process)
	<-p.done
	return fmt.Errorf("%s did not stop within %s of %s; killed", p.name, grace, sig)
}

// kill SIGKILLs the process group and waits for the process to end.
func (p *proc) kill() {
	defer p.log.Close()
	if ok, _ := p.exited(); ok {
		return
	}
	killGroup(p.cmd.Process)
	<-p.done
}

// stopAll stops procs in parallel and joins their errors.
func stopAll(procs []*proc, sig os.Signal, grace time.Duration) error {
	errc := make(chan error, len(procs))
	for _, p := range procs {
		go func() { errc <- p.stop(sig, grace) }()
	}
	var errs []error
	for range procs {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// readProcMem reads VmHWM and VmRSS of pid from /proc/PID/status.
func readProcMem(name string, pid int) (ProcMem, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return ProcMem{}, fmt.Errorf("read memory of %s: %w", name, err)
	}
	m := ProcMem{Name: name, PID: pid}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmHWM":
			dst = &m.HWMKiB
		case "VmRSS":
			dst = &m.RSSKiB
		case "RssAnon":
			dst = &m.AnonKiB
		case "RssFile":
			dst = &m.FileKiB
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return ProcMem{}, fmt.Errorf("parse %s of %s: %w", k, name, err)
		}
		*dst = n
	}
	return m, nil
}

// procCPUSeconds returns the user + system CPU time pid has used, from
// /proc/PID/stat (in USER_HZ ticks, 100 per second on Linux).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// After "(comm)": state(0) ppid(1) ... utime(11) stime(12).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return float64(u+s) / 100, nil
}

// nodesCPUSeconds is the CPU time used by graft dev's children (the
// nodes), best effort.
func nodesCPUSeconds(devPID int) float64 {
	kids, _ := childPIDs(devPID)
	var sum float64
	for _, pid := range kids {
		if s, err := procCPUSeconds(pid); err == nil {
			sum += s
		}
	}
	return sum
}

// childPIDs returns the PIDs of parent's live children, in ascending
// order, by scanning /proc/*/stat.
func childPIDs(parent int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == parent {
			out = append(out, pid)
		}
	}
	return out, nil
}
