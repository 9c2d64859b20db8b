package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/proxy"
)

// server is a real TCP server for the proxy to forward to. It answers
// each connection with handle and counts the connections it accepted.
type server struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// newServer starts a server whose connections run handle; it stops, with
// every connection closed, when the test ends.
func newServer(t *testing.T, handle func(net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// echo writes back whatever it reads.
func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// newEcho starts an echo server.
func newEcho(t *testing.T) *server { return newServer(t, echo) }

// listen starts a proxy to target, closed (and checked for leaked
// goroutines) when the test ends.
func listen(t *testing.T, target string) *proxy.Proxy {
	t.Helper()
	p, err := proxy.Listen(target)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if s := p.Stats(); s.Active != 0 {
			t.Errorf("Stats().Active = %d after Close, want 0", s.Active)
		}
		checkNoProxyGoroutines(t)
	})
	return p
}

// checkNoProxyGoroutines fails if any goroutine runs code of package proxy
// once Close has returned. A goroutine that has just called wg.Done may
// still be on its way out, so it polls briefly, as goleak does. Other
// tests' proxies would show up too: none of this package's tests is
// parallel.
func checkNoProxyGoroutines(t *testing.T) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(2 * time.Second); ; {
		left = proxyGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, g := range left {
		t.Errorf("goroutine left after Close:\n%s", g)
	}
}

// proxyGoroutines returns the stacks of the goroutines running code of
// package proxy.
func proxyGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "graft/jepsen/proxy.") {
			out = append(out, g)
		}
	}
	return out
}

func dial(t *testing.T, p *proxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectReset dials p and fails unless the connection is reset, during
// the handshake or at the first read.
func expectReset(t *testing.T, p *proxy.Proxy) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection to a rejecting proxy: %v, want ECONNRESET", err)
	}
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// expect reads exactly len(want) bytes within 5s and compares them.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectSilence fails if any byte arrives on c within d.
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read while dropping = %q, %v; want a timeout with nothing read", buf[:n], err)
	}
}

// expectCut fails unless c is cut (reset or closed) within 5s.
func expectCut(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err == nil {
		t.Fatalf("read %q from a connection that should be cut", buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not cut within 5s")
	}
}

// eventually polls cond every 5ms until it returns nil or 5s pass.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func setMode(t *testing.T, p *proxy.Proxy, m proxy.Mode) {
	t.Helper()
	if err := p.SetMode(m); err != nil {
		t.Fatalf("SetMode(%s): %v", m, err)
	}
}

func TestProxy_Pass(t *testing.T) {
	srv := newEcho(t)
	p := listen(t, srv.addr())
	if p.Target() != srv.addr() || p.Mode() != proxy.Pass {
		t.Fatalf("Target, Mode = %s, %s; want %s, pass", p.Target(), p.Mode(), srv.addr())
	}
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
		t.Errorf("Addr = %s, want a 127.0.0.1 port", p.Addr())
	}
	for i := range 3 {
		c := dial(t, p)
		msg := fmt.Sprintf("hello %d", i)
		write(t, c, msg)
		expect(t, c, msg)
	}
	eventually(t, "stats", func() error {
		want := proxy.Stats{Accepted: 3, Active: 3, BytesUp: 21, BytesDown: 21}
		if got := p.Stats(); got != want {
			return fmt.Errorf("Stats = %+v, want %+v", got, want)
		}
		return nil
	})
	if got := srv.accepted.Load(); got != 3 {
		t.Errorf("server accepted %d connections, want 3", got)
	}
}

func TestProxy_PassLargeStream(t *testing.T) {
	srv := newEcho(t)
	p := listen(t, srv.addr())
	c := dial(t, p)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echoed stream differs from what was sent")
	}
}

func TestProxy_HalfClose(t *testing.T) {
	// The server reads to EOF, then answers with the byte count and closes.
	srv := newServer(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d", n)
	})
	p := listen(t, srv.addr())
	c := dial(t, p)
	write(t, c, "12345")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got 5" {
		t.Fatalf("ReadAll = %q, %v; want \"got 5\", nil", got, err)
	}
	eventually(t, "connection released", func() error {
		if a := p.Stats().Active; a != 0 {
			return fmt.Errorf("Active = %d", a)
		}
		return nil
	})
}

func TestProxy_Drop(t *testing.T) {
	t.Run("an open connection stalls both ways and resumes on Pass", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		c := dial(t, p)
		write(t, c, "before")
		expect(t, c, "before")

		setMode(t, p, proxy.Drop)
		write(t, c, "during")
		expectSilence(t, c, 200*time.Millisecond)
		up := p.Stats().BytesUp
		if up != int64(len("before")) {
			t.Errorf("BytesUp = %d while dropping, want %d (nothing forwarded)", up, len("before"))
		}

		setMode(t, p, proxy.Pass)
		expect(t, c, "during") // held, not lost: the stream stays intact
		write(t, c, "after")
		expect(t, c, "after")
	})

	t.Run("a reply in flight is held too", func(t *testing.T) {
		// The server answers after a pause, when the proxy already drops.
		reply := make(chan struct{})
		srv := newServer(t, func(c net.Conn) {
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			<-reply
			_, _ = c.Write([]byte("pong"))
			_, _ = io.Copy(io.Discard, c)
		})
		p := listen(t, srv.addr())
		c := dial(t, p)
		write(t, c, "ping")
		eventually(t, "ping forwarded", func() error {
			if up := p.Stats().BytesUp; up != 4 {
				return fmt.Errorf("BytesUp = %d", up)
			}
			return nil
		})
		setMode(t, p, proxy.Drop)
		close(reply)
		expectSilence(t, c, 200*time.Millisecond)
		setMode(t, p, proxy.Pass)
		expect(t, c, "pong")
	})

	t.Run("a new connection is held without dialing the target", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		setMode(t, p, proxy.Drop)
		c := dial(t, p) // the kernel completes the handshake
		write(t, c, "held")
		expectSilence(t, c, 200*time.Millisecond)
		if got := srv.accepted.Load(); got != 0 {
			t.Errorf("target accepted %d connections while dropping, want 0", got)
		}
		if s := p.Stats(); s.Accepted != 1 || s.Active != 1 {
			t.Errorf("Stats = %+v, want 1 accepted and active", s)
		}
		setMode(t, p, proxy.Pass)
		expect(t, c, "held")
	})

	t.Run("Reject after Drop cuts held connections", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		open := dial(t, p)
		write(t, open, "x")
		expect(t, open, "x")
		setMode(t, p, proxy.Drop)
		held := dial(t, p)
		eventually(t, "held connection accepted", func() error {
			if a := p.Stats().Active; a != 2 {
				return fmt.Errorf("Active = %d", a)
			}
			return nil
		})
		setMode(t, p, proxy.Reject)
		expectCut(t, open)
		expectCut(t, held)
		if s := p.Stats(); s.Rejected != 2 {
			t.Errorf("Rejected = %d, want 2", s.Rejected)
		}
	})
}

func TestProxy_Reject(t *testing.T) {
	t.Run("cuts open connections and resets new ones", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		c := dial(t, p)
		write(t, c, "ping")
		expect(t, c, "ping")

		setMode(t, p, proxy.Reject)
		expectCut(t, c)
		for range 3 {
			expectReset(t, p)
		}
		eventually(t, "stats", func() error {
			if s := p.Stats(); s.Rejected != 4 || s.Active != 0 || s.Accepted != 4 {
				return fmt.Errorf("Stats = %+v, want 4 accepted and rejected, 0 active", s)
			}
			return nil
		})
		if got := srv.accepted.Load(); got != 1 {
			t.Errorf("target accepted %d connections, want 1 (before Reject)", got)
		}
	})

	t.Run("the peer sees a reset, not an orderly close", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		setMode(t, p, proxy.Reject)
		expectReset(t, p)
	})

	t.Run("Pass after Reject accepts again", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		setMode(t, p, proxy.Reject)
		setMode(t, p, proxy.Pass)
		c := dial(t, p)
		write(t, c, "again")
		expect(t, c, "again")
	})
}

func TestProxy_SetMode_invalid(t *testing.T) {
	p := listen(t, newEcho(t).addr())
	if err := p.SetMode(proxy.Mode(7)); !errors.Is(err, proxy.ErrInvalidMode) {
		t.Errorf("SetMode(7) = %v, want ErrInvalidMode", err)
	}
	if err := p.SetDelay(-time.Second, 0); !errors.Is(err, proxy.ErrInvalidDelay) {
		t.Errorf("SetDelay(-1s) = %v, want ErrInvalidDelay", err)
	}
	if p.Mode() != proxy.Pass {
		t.Errorf("Mode = %s after an invalid SetMode, want pass", p.Mode())
	}
}

func TestProxy_SetDelay(t *testing.T) {
	t.Run("delays each direction", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		c := dial(t, p)
		write(t, c, "warm")
		expect(t, c, "warm")
		const d = 100 * time.Millisecond
		if err := p.SetDelay(d, 0); err != nil {
			t.Fatal(err)
		}
		if got, j := p.Delay(); got != d || j != 0 {
			t.Errorf("Delay = %s, %s; want %s, 0", got, j, d)
		}
		start := time.Now()
		write(t, c, "slow")
		expect(t, c, "slow")
		// Up and down are each delayed: a round trip takes at least 2d.
		if rtt := time.Since(start); rtt < 2*d {
			t.Errorf("round trip took %s, want at least %s", rtt, 2*d)
		}
	})

	t.Run("jitter keeps each direction in order", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		if err := p.SetDelay(time.Millisecond, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		c := dial(t, p)
		var want bytes.Buffer
		go func() {
			for i := range 300 {
				msg := fmt.Sprintf("%04d,", i)
				if _, err := c.Write([]byte(msg)); err != nil {
					return
				}
				if i%10 == 0 {
					time.Sleep(time.Millisecond) // separate chunks
				}
			}
		}()
		for i := range 300 {
			fmt.Fprintf(&want, "%04d,", i)
		}
		expect(t, c, want.String())
	})

	t.Run("removing the delay releases waiting chunks", func(t *testing.T) {
		srv := newEcho(t)
		p := listen(t, srv.addr())
		if err := p.SetDelay(time.Hour, 0); err != nil {
			t.Fatal(err)
		}
		c := dial(t, p)
		write(t, c, "stuck")
		expectSilence(t, c, 100*time.Millisecond)
		if err := p.SetDelay(0, 0); err != nil {
			t.Fatal(err)
		}
		expect(t, c, "stuck")
	})
}

func TestProxy_targetDown(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := listen(t, addr)
	expectReset(t, p)
	eventually(t, "dial error counted", func() error {
		if s := p.Stats(); s.DialErrors != 1 || s.Active != 0 {
			return fmt.Errorf("Stats = %+v, want 1 dial error, 0 active", s)
		}
		return nil
	})
}

func TestProxy_targetCloses(t *testing.T) {
	// The server says hello and closes: the client reads it, then EOF.
	srv := newServer(t, func(c net.Conn) { _, _ = c.Write([]byte("bye")) })
	p := listen(t, srv.addr())
	c := dial(t, p)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll = %q, %v; want \"bye\", nil", got, err)
	}
}

func TestProxy_Close(t *testing.T) {
	srv := newEcho(t)
	p, err := proxy.Listen(srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	open := dial(t, p)
	write(t, open, "x")
	expect(t, open, "x")
	setMode(t, p, proxy.Drop)
	held := dial(t, p)
	write(t, held, "y")
	slow := dial(t, p)
	if err := p.SetDelay(time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "3 connections", func() error {
		if a := p.Stats().Active; a != 3 {
			return fmt.Errorf("Active = %d", a)
		}
		return nil
	})

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkNoProxyGoroutines(t)
	for _, c := range []net.Conn{open, held, slow} {
		expectCut(t, c)
	}
	if s := p.Stats(); s.Active != 0 {
		t.Errorf("Active = %d after Close", s.Active)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("dial after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	// Settings still work on a closed proxy and change nothing.
	setMode(t, p, proxy.Reject)
}

func TestListen_badTarget(t *testing.T) {
	if _, err := proxy.Listen("no-port"); err == nil {
		t.Error("Listen(\"no-port\") succeeded")
	}
}

// TestProxy_chaos toggles modes and delays while clients stream through
// the proxy: every byte a client reads back must be a prefix of what it
// sent (the stream is never reordered, duplicated or corrupted; it may be
// cut), and Close must end every goroutine.
func TestProxy_chaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped with -short")
	}
	srv := newEcho(t)
	p := listen(t, srv.addr())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var verified atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := chaosClient(p.Addr(), w, n, stop); err != nil {
					t.Errorf("client %d: %v", w, err)
					return
				}
				verified.Add(1)
			}
		})
	}
	modes := []proxy.Mode{proxy.Pass, proxy.Pass, proxy.Drop, proxy.Reject}
	for range 60 {
		setMode(t, p, modes[rand.IntN(len(modes))])
		if err := p.SetDelay(time.Duration(rand.IntN(3))*time.Millisecond, time.Duration(rand.IntN(3))*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	setMode(t, p, proxy.Pass)
	close(stop)
	wg.Wait()
	if verified.Load() == 0 {
		t.Error("no client connection completed")
	}
}

// chaosClient streams numbered lines through addr and checks what comes
// back is a prefix of what it sent.
func chaosClient(addr string, w, n int, stop <-chan struct{}) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil // a reset during the handshake is fine
	}
	defer c.Close()
	var sent bytes.Buffer
	for i := range 50 {
		fmt.Fprintf(&sent, "w%d c%d line %d\n", w, n, i)
	}
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	go func() {
		<-stop
		_ = c.SetDeadline(time.Now())
	}()
	_, _ = c.Write(sent.Bytes())
	got, _ := io.ReadAll(io.LimitReader(c, int64(sent.Len())))
	if !bytes.HasPrefix(sent.Bytes(), got) {
		return fmt.Errorf("read back %q, not a prefix of what was sent", got)
	}
	return nil
}
