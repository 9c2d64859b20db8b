package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/graft-cluster/graft/objstore/fakes3"
)

// S3Errors makes the object store answer a share of its requests with an
// HTTP error (see fakes3.Faults; the zero value turns it off). Unlike the
// object-store proxy's modes, which break the TCP connection, the nodes
// get well-formed S3 errors (500 InternalError, 503 SlowDown) from a live
// server. It talks to `graft s3 --fault-admin` at its real address.
func (c *Cluster) S3Errors(ctx context.Context, f fakes3.Faults) error {
	if c.s3Addr == "" {
		return fmt.Errorf("s3 errors: %w", ErrNoObjectStore)
	}
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("s3 errors: %w", err)
	}
	if _, err := c.s3Admin(ctx, http.MethodPut, body); err != nil {
		return fmt.Errorf("s3 errors: %w", err)
	}
	c.log.Info("nemesis: s3 errors", "rate", f.Rate, "status", f.Status, "match", f.Match)
	return nil
}

// S3FaultStats returns the object store's injected faults and counters.
func (c *Cluster) S3FaultStats(ctx context.Context) (fakes3.FaultStats, error) {
	if c.s3Addr == "" {
		return fakes3.FaultStats{}, fmt.Errorf("s3 fault stats: %w", ErrNoObjectStore)
	}
	return c.s3Admin(ctx, http.MethodGet, nil)
}

func (c *Cluster) s3Admin(ctx context.Context, method string, body []byte) (fakes3.FaultStats, error) {
	var st fakes3.FaultStats
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.s3Addr+fakes3.FaultPath, bytes.NewReader(body))
	if err != nil {
		return st, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s %s: %s: %s", method, fakes3.FaultPath, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decode fault stats: %w", err)
	}
	return st, nil
}

// S3Rate limits every object-store connection to bytesPerSecond in each
// direction (a slow body); 0 removes the limit.
func (c *Cluster) S3Rate(bytesPerSecond int64) error {
	if c.s3Proxy == nil {
		return fmt.Errorf("s3 rate: %w", ErrNoObjectStore)
	}
	if err := c.s3Proxy.SetRate(bytesPerSecond); err != nil {
		return fmt.Errorf("s3 rate: %w", err)
	}
	c.log.Info("nemesis: s3 rate", "bytes_per_second", bytesPerSecond)
	return nil
}
