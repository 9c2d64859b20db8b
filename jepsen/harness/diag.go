package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// DumpGoroutines saves the goroutine dump of every running node that is
// not paused (GET /debug/pprof/goroutine?debug=2 on its real API address;
// the nodes must run with --pprof) to dir/<id>-goroutines.txt, and returns
// the files written. It is for diagnosing a step that hung: unlike SIGQUIT
// it leaves the processes running.
func (c *Cluster) DumpGoroutines(ctx context.Context, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dump goroutines: %w", err)
	}
	var files []string
	var errs []error
	for _, n := range c.nodes {
		n.mu.Lock()
		alive, paused := n.proc.alive(), n.paused
		n.mu.Unlock()
		if !alive || paused {
			continue
		}
		path := filepath.Join(dir, n.id+"-goroutines.txt")
		if err := c.dumpGoroutines(ctx, n, path); err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, path)
	}
	return files, errors.Join(errs...)
}

func (c *Cluster) dumpGoroutines(ctx context.Context, n *node, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Scheme()+n.apiAddr+"/debug/pprof/goroutine?debug=2", nil)
	if err != nil {
		return fmt.Errorf("dump goroutines of %s: %w", n.id, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("dump goroutines of %s: %w", n.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("dump goroutines of %s: status %s (is --pprof set?)", n.id, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("dump goroutines of %s: %w", n.id, err)
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 64<<20)); err != nil {
		f.Close()
		return fmt.Errorf("dump goroutines of %s: %w", n.id, err)
	}
	return f.Close()
}
