package jepsen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrOutInUse is returned by Run when another run holds the output
// directory: two runs writing one directory interleave their histories,
// node logs and bucket reads, and the checkers then judge a mix (seen
// once: a history with ops of one run and commit hashes of the other
// read as "linearizable=false chain=false").
var ErrOutInUse = errors.New("jepsen: output directory in use by another run")

// lockOut takes an exclusive, non-blocking lock on dir/.lock for the
// run's lifetime (released by the returned function, and by the kernel
// if the process dies). The lock file records the holder's pid so the
// refusal can name it.
func lockOut(dir string) (func(), error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jepsen: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w: %s (pid %s); use another --out", ErrOutInUse, dir, pid)
		}
		return nil, fmt.Errorf("jepsen: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
