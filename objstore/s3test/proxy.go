package s3test

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a server, for network faults no HTTP
// handler can fake:
//
//   - Blackhole: the path drops every packet without a reset, the most
//     common way a network path to S3 fails. The proxy keeps accepting
//     connections and reading from both sides, but forwards nothing, so a
//     client sees a connection that takes its request and never answers.
//     A connection that lost bytes to the blackhole stays mute for good
//     (its stream is torn); after Heal, new connections pass through.
//   - Cut: the open connections go mute for good, new ones pass (a
//     stateful middlebox that lost its flows).
//   - HoldNext: the next connections pass requests through but hold the
//     server's responses until Release: a slow server, for one connection
//     and not the others.
//
// Start one with StartProxy and point a store at Endpoint (Server.URLVia).
type Proxy struct {
	// Endpoint is the proxy's base URL, http://127.0.0.1:port.
	Endpoint string

	target string // host:port
	ln     net.Listener

	mu         sync.Mutex
	blackholed bool
	holdNext   int
	released   chan struct{} // closed by Release
	accepted   int
	conns      map[net.Conn]struct{}
	flows      map[net.Conn]*pconn // by client connection
	closed     bool
	closing    chan struct{}
	wg         sync.WaitGroup
}

// StartProxy starts a proxy to target, a base URL (http://host:port) or a
// host:port. tb.Cleanup stops it and closes every connection.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		target = u.Host
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("s3test: proxy listen: %v", err)
	}
	p := &Proxy{
		Endpoint: "http://" + ln.Addr().String(),
		target:   target,
		ln:       ln,
		released: make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
		flows:    map[net.Conn]*pconn{},
		closing:  make(chan struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Blackhole makes the path drop everything, on new and open connections.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackholed = true
}

// Heal ends the blackhole: new connections pass through again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackholed = false
}

// Cut makes every open connection mute for good, as a blackhole would,
// while new connections pass (a stateful firewall or load balancer that
// lost its flows): a client's pooled connections are dead, fresh ones work.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.flows {
		pc.mu.Lock()
		pc.dead = true
		pc.mu.Unlock()
	}
}

// HoldNext makes the next n accepted connections hold the server's
// responses until Release.
func (p *Proxy) HoldNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdNext = n
}

// Release lets held responses through. It may be called once.
func (p *Proxy) Release() { close(p.released) }

// Accepted returns how many connections the proxy has accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *Proxy) close() {
	close(p.closing)
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.accepted++
		hold := p.holdNext > 0
		if hold {
			p.holdNext--
		}
		p.conns[c] = struct{}{}
		pc := &pconn{}
		p.flows[c] = pc
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c, pc, hold)
	}
}

// pconn is one proxied connection's shared state.
type pconn struct {
	mu   sync.Mutex
	dead bool // lost bytes to a blackhole: forwards nothing ever again
}

// pass reports whether a chunk may be forwarded now, marking the
// connection dead if the path is blackholed.
func (p *Proxy) pass(pc *pconn) bool {
	p.mu.Lock()
	bh := p.blackholed
	p.mu.Unlock()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if bh {
		pc.dead = true
	}
	return !pc.dead
}

func (p *Proxy) serve(client net.Conn, pc *pconn, hold bool) {
	defer p.wg.Done()
	var server net.Conn
	defer func() {
		_ = client.Close()
		if server != nil {
			_ = server.Close()
		}
		p.mu.Lock()
		delete(p.conns, client)
		delete(p.flows, client)
		if server != nil {
			delete(p.conns, server)
		}
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 && p.pass(pc) {
			if server == nil {
				// Dialled on the first byte to forward, so a connection
				// accepted during a blackhole never reaches the server.
				var derr error
				if server, derr = net.Dial("tcp", p.target); derr != nil {
					return
				}
				p.mu.Lock()
				if p.closed {
					p.mu.Unlock()
					return
				}
				p.conns[server] = struct{}{}
				p.mu.Unlock()
				p.wg.Add(1)
				go p.respond(server, client, pc, hold)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // the client left (HTTP clients never half-close)
		}
	}
}

// respond copies the server's bytes to the client, holding them until
// Release if hold is set.
func (p *Proxy) respond(server, client net.Conn, pc *pconn, hold bool) {
	defer p.wg.Done()
	defer client.Close() // the server closed: so does the client's side
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if hold {
				select {
				case <-p.released:
				case <-p.closing:
					return
				}
				hold = false
			}
			if p.pass(pc) {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
