package tlsutil

import (
	"crypto/tls"
	"net"
	"sync"
)

// coalesceMax bounds the records a coalesced write holds before it sends
// them: a larger write goes out in pieces of about this size, so a
// connection never holds more than this (plus one record) in memory.
const coalesceMax = 256 << 10

// CoalescedConn is a TLS connection whose Write sends all the records of
// one call in one write to the socket (up to 256 KiB at a time) instead of
// one write per record (16 KiB): a 64 KiB Raft message costs the sender
// one system call instead of five and the receiver one wake-up instead of
// up to five. The bytes on the wire are exactly those of the plain
// *tls.Conn; only their grouping into socket writes differs.
//
// Everything else (Read, deadlines, ConnectionState, Close) is the
// embedded *tls.Conn's.
type CoalescedConn struct {
	*tls.Conn
	raw *holdConn
}

// ClientCoalesced starts a TLS client over raw whose writes are coalesced.
// The handshake runs on the first Read or Write, or an explicit
// Handshake/HandshakeContext call, as with tls.Client.
func ClientCoalesced(raw net.Conn, cfg *tls.Config) *CoalescedConn {
	h := &holdConn{Conn: raw}
	return &CoalescedConn{Conn: tls.Client(h, cfg), raw: h}
}

// ServerCoalesced is ClientCoalesced's server side (tls.Server).
func ServerCoalesced(raw net.Conn, cfg *tls.Config) *CoalescedConn {
	h := &holdConn{Conn: raw}
	return &CoalescedConn{Conn: tls.Server(h, cfg), raw: h}
}

// Write writes p as TLS records, handed to the socket together. It runs
// the handshake first if it has not run yet, outside the hold: held
// handshake records would never reach the peer whose answer the handshake
// waits for.
func (c *CoalescedConn) Write(p []byte) (int, error) {
	if err := c.Conn.Handshake(); err != nil {
		return 0, err
	}
	c.raw.hold()
	n, err := c.Conn.Write(p)
	if ferr := c.raw.release(); err == nil && ferr != nil {
		err = ferr
	}
	return n, err
}

// NetConn returns the socket under the TLS layer.
func (c *CoalescedConn) NetConn() net.Conn { return c.raw.Conn }

// holdConn is the socket under a CoalescedConn. While at least one
// CoalescedConn.Write is in progress (holds > 0) it appends what the TLS
// layer writes (whole records: crypto/tls writes each record in one call)
// to buf; release sends buf. Records the TLS layer writes on its own (an
// alert or a key update from the read side) while a Write holds are sent
// with that Write's records, in order; otherwise they go straight out. The
// first socket error sticks: later writes return it, so a connection whose
// buffered records were lost never sends more.
type holdConn struct {
	net.Conn

	mu    sync.Mutex
	holds int
	buf   []byte
	err   error
}

func (h *holdConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return 0, h.err
	}
	if h.holds == 0 {
		n, err := h.Conn.Write(p)
		h.err = err
		return n, err
	}
	h.buf = append(h.buf, p...)
	if len(h.buf) >= coalesceMax {
		if err := h.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (h *holdConn) hold() {
	h.mu.Lock()
	h.holds++
	h.mu.Unlock()
}

// release ends one hold and sends what is held.
func (h *holdConn) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holds--
	return h.flushLocked()
}

func (h *holdConn) flushLocked() error {
	if h.err != nil {
		return h.err
	}
	if len(h.buf) == 0 {
		return nil
	}
	_, h.err = h.Conn.Write(h.buf)
	if cap(h.buf) > 2*coalesceMax {
		h.buf = nil
	} else {
		h.buf = h.buf[:0]
	}
	return h.err
}

// NewCoalescedListener is tls.NewListener whose connections are
// ServerCoalesced: the Raft listener, where a follower's answers are small
// but an InstallSnapshot or a leader's entries flow the other way.
func NewCoalescedListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return coalescedListener{Listener: ln, cfg: cfg}
}

type coalescedListener struct {
	net.Listener
	cfg *tls.Config
}

func (l coalescedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return ServerCoalesced(c, l.cfg), nil
}
