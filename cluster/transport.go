package cluster

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is raft's StreamLayer over a listener we own, so tests can
// pass port-0 listeners and a later TLS or fault-injecting dialer can slot
// in without touching raft.
type streamLayer struct {
	net.Listener
	advertise net.Addr
}

func newStreamLayer(ln net.Listener) (*streamLayer, error) {
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || addr.IP.IsUnspecified() {
		return nil, fmt.Errorf("raft listener %s: need a concrete TCP address to advertise", ln.Addr())
	}
	return &streamLayer{Listener: ln, advertise: addr}, nil
}

// Addr is the advertised address.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial opens a TCP connection to a peer with Nagle off: Raft messages are
// small and latency-bound.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return conn, nil
}

// dialProvider resolves peers through Config.Dial; peers without an
// override fall back to their advertised address.
type dialProvider map[string]Peer

func (d dialProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if p, ok := d[string(id)]; ok && p.RaftAddr != "" {
		return raft.ServerAddress(p.RaftAddr), nil
	}
	return "", fmt.Errorf("no dial override for %s", id)
}
