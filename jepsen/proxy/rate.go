package proxy

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// ratePieces is how many pieces per second a rate-limited direction
// writes: a chunk is cut into pieces of rate/ratePieces bytes, so a slow
// body trickles in small writes rather than arriving in bursts.
const ratePieces = 10

// SetRate limits each direction of every connection, open or new, to
// bytesPerSecond (a slow body: bytes trickle instead of arriving late all
// at once, like a congested or lossy path). 0 removes the limit. The rate
// applies after the delay, to bytes not yet written.
func (p *Proxy) SetRate(bytesPerSecond int64) error {
	if bytesPerSecond < 0 {
		return fmt.Errorf("%w: %d bytes/s", ErrInvalidRate, bytesPerSecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = bytesPerSecond
	p.broadcastLocked()
	return nil
}

// Rate returns the current rate limit in bytes per second (0: none).
func (p *Proxy) Rate() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

func (p *Proxy) rateState() (int64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate, p.changed
}

// writeChunk writes c's data to dst, paced by the rate limit if there is
// one. Between two pieces it waits for the mode to allow writing again, as
// awaitRelease does for the whole chunk. It reports false when the
// connection must be cut (write error, Reject, cn killed).
func (p *Proxy) writeChunk(cn *conn, dst net.Conn, c chunk, written *atomic.Int64) bool {
	data := c.data
	for len(data) > 0 {
		rate, changed := p.rateState()
		piece := len(data)
		if rate > 0 {
			piece = int(min(int64(piece), max(1, rate/ratePieces)))
		}
		n, err := dst.Write(data[:piece])
		written.Add(int64(n))
		if err != nil {
			return false
		}
		data = data[piece:]
		if rate == 0 || len(data) == 0 {
			continue
		}
		t := time.NewTimer(time.Duration(int64(piece) * int64(time.Second) / rate))
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-cn.ctx.Done():
			t.Stop()
			return false
		}
		if !p.awaitRelease(cn, c) {
			return false
		}
	}
	return true
}
