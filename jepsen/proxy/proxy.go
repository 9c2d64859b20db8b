package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by this package.
var (
	// ErrInvalidMode is returned by SetMode for a value that is not Pass,
	// Drop or Reject.
	ErrInvalidMode = errors.New("proxy: invalid mode")
	// ErrInvalidDelay is returned by SetDelay for a negative duration.
	ErrInvalidDelay = errors.New("proxy: invalid delay")
	// ErrInvalidRate is returned by SetRate for a negative rate.
	ErrInvalidRate = errors.New("proxy: invalid rate")
)

// Mode is what a Proxy does with the bytes of its connections.
type Mode int32

// Modes; see the package documentation.
const (
	// Pass forwards bytes both ways, after the configured delay.
	Pass Mode = iota
	// Drop holds every connection open and moves no byte until the mode
	// changes.
	Drop
	// Reject resets every connection, open or new.
	Reject
)

// String returns "pass", "drop" or "reject".
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Drop:
		return "drop"
	case Reject:
		return "reject"
	default:
		return fmt.Sprintf("Mode(%d)", int32(m))
	}
}

// Stats counts what a Proxy did since Listen.
type Stats struct {
	// Accepted is the number of connections accepted.
	Accepted int64
	// Active is the number of connections open now: held, forwarding or
	// draining.
	Active int64
	// Rejected is the number of connections reset because of Reject.
	Rejected int64
	// DialErrors is the number of connections reset because the target
	// could not be dialed.
	DialErrors int64
	// BytesUp is the number of bytes written to the target.
	BytesUp int64
	// BytesDown is the number of bytes written back to clients.
	BytesDown int64
}

const (
	// chunkSize is the most one read takes from a connection; the delay
	// applies per chunk.
	chunkSize = 32 << 10
	// queueLen is the number of chunks read but not yet written that one
	// direction of a connection holds before it stops reading (and the
	// sender's TCP window fills up).
	queueLen = 16
	// dialTimeout bounds one dial of the target.
	dialTimeout = 5 * time.Second
	// acceptBackoff is the pause after an Accept error that is not the
	// listener being closed (such as running out of file descriptors).
	acceptBackoff = 10 * time.Millisecond
)

// Proxy forwards the TCP connections it accepts on a loopback port to one
// target, with injectable faults. Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	done   chan struct{} // closed by Close

	mu      sync.Mutex
	mode    Mode
	delay   time.Duration
	jitter  time.Duration
	rate    int64         // bytes per second per direction of a connection; 0: unlimited
	changed chan struct{} // closed and replaced on every change of mode, delay or rate
	conns   map[*conn]struct{}
	closed  bool

	wg sync.WaitGroup // the accept loop and every connection handler

	accepted, rejected, dialErrors, bytesUp, bytesDown atomic.Int64
}

// Listen starts a proxy on 127.0.0.1 with a port the kernel picks, in
// Pass mode with no delay, forwarding to target (host:port). The target
// need not be up: connections to a target that refuses are reset.
func Listen(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for proxy to %s: %w", target, err)
	}
	p := &Proxy{
		ln:      ln,
		target:  target,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		conns:   map[*conn]struct{}{},
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the host:port clients dial to reach the target through the
// proxy.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetMode switches the proxy to m for every open and future connection.
// Reject resets the open connections before it returns.
func (p *Proxy) SetMode(m Mode) error {
	if m != Pass && m != Drop && m != Reject {
		return fmt.Errorf("%w: %d", ErrInvalidMode, int32(m))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	p.broadcastLocked()
	if m == Reject {
		for cn := range p.conns {
			if cn.kill() {
				p.rejected.Add(1)
			}
		}
	}
	return nil
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetDelay makes every chunk not yet written wait delay plus a uniformly
// random share of jitter after it was read. Zero for both removes the
// delay.
func (p *Proxy) SetDelay(delay, jitter time.Duration) error {
	if delay < 0 || jitter < 0 {
		return fmt.Errorf("%w: delay %s, jitter %s", ErrInvalidDelay, delay, jitter)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay, p.jitter = delay, jitter
	p.broadcastLocked()
	return nil
}

// Delay returns the current delay and jitter.
func (p *Proxy) Delay() (delay, jitter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay, p.jitter
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := int64(len(p.conns))
	p.mu.Unlock()
	return Stats{
		Accepted:   p.accepted.Load(),
		Active:     active,
		Rejected:   p.rejected.Load(),
		DialErrors: p.dialErrors.Load(),
		BytesUp:    p.bytesUp.Load(),
		BytesDown:  p.bytesDown.Load(),
	}
}

// Close stops accepting, resets every connection and waits until all of
// the proxy's goroutines have ended. Later calls return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.done)
	err := p.ln.Close()
	for cn := range p.conns {
		cn.kill()
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("close proxy %s: %w", p.Addr(), err)
	}
	return nil
}

func (p *Proxy) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// state returns the current settings and a channel closed on their next
// change.
func (p *Proxy) state() (Mode, time.Duration, time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay, p.jitter, p.changed
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t := time.NewTimer(acceptBackoff)
			select {
			case <-p.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		p.accepted.Add(1)
		cn := newConn(c)
		mode, ok := p.add(cn)
		switch {
		case !ok:
			cn.kill()
		case mode == Reject:
			if cn.kill() {
				p.rejected.Add(1)
			}
			p.remove(cn)
			p.wg.Done()
		default:
			go p.handle(cn)
		}
	}
}

// add registers cn and counts its handler in wg; it reports the mode at
// that moment, and false when the proxy is closed.
func (p *Proxy) add(cn *conn) (Mode, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, false
	}
	p.conns[cn] = struct{}{}
	p.wg.Add(1)
	return p.mode, true
}

func (p *Proxy) remove(cn *conn) {
	p.mu.Lock()
	delete(p.conns, cn)
	p.mu.Unlock()
}

// handle owns one accepted connection: it holds it while the proxy drops,
// dials the target, and forwards both directions until both end.
func (p *Proxy) handle(cn *conn) {
	defer p.wg.Done()
	defer p.remove(cn)
	if !p.awaitForward(cn) {
		cn.kill()
		return
	}
	ctx, cancel := context.WithTimeout(cn.ctx, dialTimeout)
	var d net.Dialer
	t, err := d.DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		if cn.ctx.Err() == nil {
			p.dialErrors.Add(1)
		}
		cn.kill()
		return
	}
	if tc, ok := t.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if !cn.setTarget(t) {
		return
	}
	var wg sync.WaitGroup
	p.pipe(&wg, cn, cn.client, t, &p.bytesUp)
	p.pipe(&wg, cn, t, cn.client, &p.bytesDown)
	wg.Wait()
	cn.close()
}

// awaitForward waits while the proxy drops; it reports whether cn may be
// forwarded (false on Reject or when cn was killed).
func (p *Proxy) awaitForward(cn *conn) bool {
	for {
		mode, _, _, changed := p.state()
		switch mode {
		case Pass:
			return true
		case Reject:
			return false
		}
		select {
		case <-changed:
		case <-cn.ctx.Done():
			return false
		}
	}
}

// chunk is what one read returned: data, or the end of the stream (err is
// io.EOF for an orderly close, anything else for a reset).
type chunk struct {
	data   []byte
	err    error
	readAt time.Time
	share  float64 // of the jitter, in [0, 1), drawn when read
}

// pipe starts the reader and the writer of one direction, counted in wg.
func (p *Proxy) pipe(wg *sync.WaitGroup, cn *conn, src, dst net.Conn, written *atomic.Int64) {
	q := make(chan chunk, queueLen)
	wg.Go(func() { read(cn, src, q) })
	wg.Go(func() { p.write(cn, dst, q, written) })
}

// read moves chunks from src into q until src ends or cn is killed.
func read(cn *conn, src net.Conn, q chan<- chunk) {
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c := chunk{data: append([]byte(nil), buf[:n]...), readAt: time.Now(), share: rand.Float64()}
			select {
			case q <- c:
			case <-cn.ctx.Done():
				return
			}
		}
		if err != nil {
			select {
			case q <- chunk{err: err, readAt: time.Now(), share: rand.Float64()}:
			case <-cn.ctx.Done():
			}
			return
		}
	}
}

// write writes the chunks of q to dst, in order, each once the mode lets
// it through and its delay has passed.
func (p *Proxy) write(cn *conn, dst net.Conn, q <-chan chunk, written *atomic.Int64) {
	for {
		var c chunk
		select {
		case c = <-q:
		case <-cn.ctx.Done():
			return
		}
		if !p.awaitRelease(cn, c) {
			cn.kill()
			return
		}
		if c.err != nil {
			if !errors.Is(c.err, io.EOF) {
				cn.kill() // the source was reset: pass the reset on
				return
			}
			if cw, ok := dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
				cn.kill()
			}
			return
		}
		if !p.writeChunk(cn, dst, c, written) {
			cn.kill()
			return
		}
	}
}

// awaitRelease waits until c may be written: the mode is Pass and c's
// delay has passed. It reports false on Reject or when cn was killed.
func (p *Proxy) awaitRelease(cn *conn, c chunk) bool {
	for {
		mode, delay, jitter, changed := p.state()
		switch mode {
		case Reject:
			return false
		case Drop:
			select {
			case <-changed:
				continue
			case <-cn.ctx.Done():
				return false
			}
		}
		wait := time.Until(c.readAt.Add(delay + time.Duration(c.share*float64(jitter))))
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-cn.ctx.Done():
			t.Stop()
			return false
		}
	}
}

// conn is one proxied connection: the accepted client side and, once
// dialed, the target side.
type conn struct {
	client net.Conn
	ctx    context.Context // done once the connection is killed
	cancel context.CancelFunc

	mu     sync.Mutex
	target net.Conn
	killed bool
}

func newConn(c net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{client: c, ctx: ctx, cancel: cancel}
}

// setTarget attaches the dialed target side; when cn was killed meanwhile
// it resets t and reports false.
func (cn *conn) setTarget(t net.Conn) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.killed {
		reset(t)
		return false
	}
	cn.target = t
	return true
}

// kill resets both sides and wakes every goroutine of cn. It reports
// whether this call did it.
func (cn *conn) kill() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.killed {
		return false
	}
	cn.killed = true
	cn.cancel()
	reset(cn.client)
	if cn.target != nil {
		reset(cn.target)
	}
	return true
}

// close closes both sides after both directions ended in order.
func (cn *conn) close() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.killed {
		return
	}
	cn.killed = true
	cn.cancel()
	_ = cn.client.Close()
	if cn.target != nil {
		_ = cn.target.Close()
	}
}

// reset closes c so that its peer gets a TCP RST rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
