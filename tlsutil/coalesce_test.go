package tlsutil_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/graft-cluster/graft/tlsutil"
)

// countingConn records the sizes of the writes that reach the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) take() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// pair returns a handshaken peer link: the client side over a counting
// socket (coalesced or not) and the server side's conn.
func pair(t *testing.T, coalesced bool) (net.Conn, *countingConn, net.Conn) {
	t.Helper()
	f, _, err := tlsutil.DevFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := tls.NewListener(ln, h.ServerConfig(true)).Accept()
		if err != nil {
			close(accepted)
			return
		}
		if err := c.(*tls.Conn).Handshake(); err != nil {
			c.Close()
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: raw}
	var c interface {
		net.Conn
		Handshake() error
	}
	if coalesced {
		c = tlsutil.ClientCoalesced(cc, h.ClientConfig("127.0.0.1"))
	} else {
		c = tls.Client(cc, h.ClientConfig("127.0.0.1"))
	}
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	srv, ok := <-accepted
	if !ok {
		t.Fatal("server handshake failed")
	}
	t.Cleanup(func() { c.Close(); srv.Close() })
	cc.take()
	return c, cc, srv
}

// A 64 KiB write (a 16-page commit's AppendEntries) reaches the socket in
// one write, as five TLS records, and arrives intact; a plain *tls.Conn
// writes each record on its own.
func TestCoalescedConn_Write(t *testing.T) {
	msg := bytes.Repeat([]byte("graft-64k"), 64<<10/9)
	for _, coalesced := range []bool{false, true} {
		c, cc, srv := pair(t, coalesced)
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, len(msg))
			_, err := io.ReadFull(srv, b)
			if err != nil {
				b = nil
			}
			got <- b
		}()
		if n, err := c.Write(msg); err != nil || n != len(msg) {
			t.Fatalf("coalesced=%v: write %d %v", coalesced, n, err)
		}
		if b := <-got; !bytes.Equal(b, msg) {
			t.Fatalf("coalesced=%v: the server read other bytes", coalesced)
		}
		writes := cc.take()
		switch {
		case coalesced && len(writes) != 1:
			t.Fatalf("coalesced: %d socket writes %v, want 1", len(writes), writes)
		case !coalesced && len(writes) < 4:
			t.Fatalf("plain tls.Conn: %d socket writes %v, want one per 16 KiB record", len(writes), writes)
		}
	}
}

// A write larger than the hold bound goes out in bounded pieces.
func TestCoalescedConn_WriteBounded(t *testing.T) {
	c, cc, srv := pair(t, true)
	msg := bytes.Repeat([]byte{7}, 1<<20)
	go io.Copy(io.Discard, srv)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	writes := cc.take()
	if len(writes) < 4 {
		t.Fatalf("1 MiB in %d socket writes %v, want pieces of at most ~256 KiB", len(writes), writes)
	}
	for _, w := range writes {
		if w > 256<<10+17<<10 {
			t.Fatalf("a socket write of %d bytes: the hold bound is 256 KiB plus one record", w)
		}
	}
}

// Concurrent writers' messages arrive whole and uninterleaved (crypto/tls
// serializes Write; the hold must keep that order).
func TestCoalescedConn_ConcurrentWrites(t *testing.T) {
	c, _, srv := pair(t, true)
	const writers, each, size = 4, 25, 40 << 10
	done := make(chan error, 1)
	go func() {
		b := make([]byte, size)
		for range writers * each {
			if _, err := io.ReadFull(srv, b); err != nil {
				done <- err
				return
			}
			if bytes.Count(b, b[:1]) != size {
				done <- io.ErrUnexpectedEOF
				return
			}
		}
		done <- nil
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range each {
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("reader: %v (a message interleaved with another)", err)
	}
}

// A Write before the handshake (no explicit Handshake call) completes: the
// handshake's own records are not held back behind the Write, which would
// wait forever for a peer that never saw them.
func TestCoalescedConn_WriteBeforeHandshake(t *testing.T) {
	f, _, err := tlsutil.DevFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	srv := tlsutil.ServerCoalesced(b, h.ServerConfig(true))
	cl := tlsutil.ClientCoalesced(a, h.ClientConfig("127.0.0.1"))
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 5)
		_, err := io.ReadFull(srv, buf)
		if err == nil && string(buf) != "hello" {
			err = errors.New("read " + string(buf))
		}
		got <- err
	}()
	if _, err := cl.Write([]byte("hello")); err != nil {
		t.Fatalf("write before the handshake: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// And the server side writing first.
	go func() {
		buf := make([]byte, 3)
		_, err := io.ReadFull(cl, buf)
		got <- err
	}()
	if _, err := srv.Write([]byte("ack")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
