package cluster

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/tlsutil"
)

// With TLS the Raft stream layer runs mutual TLS over coalesced
// connections both ways (one socket write per RPC flush), and a dialer
// without a member certificate is refused.
func TestStreamLayer_TLS(t *testing.T) {
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
	s, err := newStreamLayer(ln, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := bytes.Repeat([]byte("raft"), 16<<10)
	got := make(chan []byte, 1)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := s.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(c, b); err != nil {
			b = nil
		}
		got <- b
	}()
	c, err := s.Dial(raft.ServerAddress(s.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*tlsutil.CoalescedConn); !ok {
		t.Fatalf("dialed %T, want *tlsutil.CoalescedConn", c)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	if _, ok := sc.(*tlsutil.CoalescedConn); !ok {
		t.Fatalf("accepted %T, want *tlsutil.CoalescedConn", sc)
	}
	if b := <-got; !bytes.Equal(b, msg) {
		t.Fatal("the listener read other bytes than were sent")
	}
	if st := c.(*tlsutil.CoalescedConn).ConnectionState(); st.Version < tls.VersionTLS12 || len(st.PeerCertificates) == 0 {
		t.Fatalf("connection state: version %x, %d peer certificates", st.Version, len(st.PeerCertificates))
	}

	// No client certificate: the member link refuses the handshake.
	go func() {
		if c, err := s.Accept(); err == nil {
			_, _ = c.Read(make([]byte, 1)) // runs the server handshake
			c.Close()
		}
	}()
	pool, err := tlsutil.LoadPool(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	anon, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err == nil {
		// TLS 1.3: the client learns of the refusal on its first read.
		_, err = anon.Read(make([]byte, 1))
		anon.Close()
	}
	if err == nil {
		t.Fatal("a dialer without a member certificate got a Raft connection")
	}
}
