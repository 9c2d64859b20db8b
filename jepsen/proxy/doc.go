// Package proxy is a fault-injecting TCP proxy for one directed network
// link of the consistency suite: it listens on 127.0.0.1:0 and forwards
// every connection it accepts to one target address. Faults need no root
// and no iptables; the harness puts one Proxy on every link it wants to
// break (node to node for Raft and forwarding, client to node, node to
// object store).
//
// Modes, settable at any time, apply to the connections already open and
// to new ones:
//
//   - Pass forwards bytes both ways.
//   - Drop is a blackhole, like iptables DROP: connections stay open but no
//     byte moves in either direction. A connection accepted while dropping
//     is held without dialing the target. Nothing is discarded: what was
//     sent during the drop is delivered, in order, once the mode is Pass
//     again, as TCP retransmission would after a transient loss, so a
//     connection survives a Drop that its endpoints did not time out.
//   - Reject closes every open connection with a reset (RST) and resets new
//     ones as soon as they are accepted, like a dead or firewalled peer.
//
// SetDelay adds latency: each chunk read from one side is written to the
// other no earlier than delay plus a uniformly random part of jitter after
// it was read. Chunks of one direction are written by one goroutine in the
// order they were read, so jitter never reorders bytes; later chunks may
// wait behind an earlier, longer-delayed one. A new delay applies to chunks
// not yet written.
//
// SetRate makes a slow body: each direction of a connection writes at most
// that many bytes per second, in small pieces, so a request or response
// trickles in rather than arriving late in one piece.
//
// Invariants. Every goroutine belongs to the Proxy: the accept loop, one
// handler per connection and a reader and a writer per direction; Close
// stops the listener, resets every connection and returns only after all of
// them have ended. A connection's bytes are never reordered, duplicated or
// dropped: a stream either arrives whole and in order, or is cut by a
// reset.
package proxy
