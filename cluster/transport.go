package cluster

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/tlsutil"
)

// streamLayer is raft's StreamLayer over a listener we own, so tests can
// pass port-0 listeners and a later TLS or fault-injecting dialer can slot
// in without touching raft.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tlsutil.Holder // nil: plaintext
}

// NewStreamLayer returns the stream layer nodes give their Raft transport
// (the bare-Raft benchmark baseline uses it too).
func NewStreamLayer(ln net.Listener) (raft.StreamLayer, error) { return newStreamLayer(ln, nil) }

// newStreamLayer serves Raft on ln; with h it runs mutual TLS: a peer
// must present a certificate of h's CA, and so must we. TLS connections
// both ways are tlsutil.CoalescedConns: NetworkTransport flushes a whole
// RPC (a 16-page AppendEntries is 64 KiB, five TLS records) in one Write,
// which then reaches the socket in one system call instead of one per
// record (docs/ARCHITECTURE.md, "TLS cost").
func newStreamLayer(ln net.Listener, h *tlsutil.Holder) (*streamLayer, error) {
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || addr.IP.IsUnspecified() {
		return nil, fmt.Errorf("raft listener %s: need a concrete TCP address to advertise", ln.Addr())
	}
	s := &streamLayer{Listener: ln, advertise: addr, tls: h}
	if h != nil {
		s.Listener = tlsutil.NewCoalescedListener(ln, h.ServerConfig(true))
	}
	return s, nil
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
	if s.tls == nil {
		return conn, nil
	}
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		conn.Close()
		return nil, err
	}
	tc := tlsutil.ClientCoalesced(conn, s.tls.ClientConfig(host))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake with raft peer %s: %w", address, err)
	}
	return tc, nil
}

// dialProvider resolves peers through Config.Dial. Peers without an
// override resolve to their known address (node directory, then static
// peers) rather than an error: hashicorp/raft asks for every server,
// itself included, on every RPC and logs a warning for each error.
type dialProvider struct{ n *Node }

func (d dialProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if p, ok := d.n.cfg.Dial[string(id)]; ok && p.RaftAddr != "" {
		return raft.ServerAddress(p.RaftAddr), nil
	}
	if string(id) == d.n.cfg.ID {
		return raft.ServerAddress(d.n.raftAddr), nil
	}
	if ni, ok := d.n.fsm.Node(string(id)); ok && ni.RaftAddr != "" {
		return raft.ServerAddress(ni.RaftAddr), nil
	}
	for _, p := range d.n.cfg.Peers {
		if p.ID == string(id) {
			return raft.ServerAddress(p.RaftAddr), nil
		}
	}
	return "", fmt.Errorf("no address known for %s", id)
}
