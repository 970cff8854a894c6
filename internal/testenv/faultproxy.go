package testenv

import (
	"net"
	"sync"
	"testing"
)

// FaultProxy is a TCP proxy on 127.0.0.1 in front of one server, for
// tests that show what a client does when the network or the server fails
// the way a failover makes it fail: a request that reaches the server
// whose answer never comes back ([FaultProxy.CutReply]), a server that
// refuses connections for a while ([FaultProxy.Refuse]), and every
// connection dropped at once ([FaultProxy.CutAll]). Otherwise it forwards
// bytes both ways unchanged. It knows nothing of the protocol it carries.
type FaultProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    map[*proxyConn]struct{}
	refusing bool
	closed   bool
	// cut, when set, picks the next request whose answer is to be lost;
	// it is cleared when one matched.
	cut  func(request []byte) bool
	cuts int // answers cut so far
}

// proxyConn is one client connection and the proxy's connection to the
// server for it.
type proxyConn struct {
	client, server net.Conn
	// doomed: a request that was let through on this connection is to
	// lose its answer. Guarded by FaultProxy.mu.
	doomed bool
	once   sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		// Reset rather than close politely, as a dead peer would.
		if tc, ok := c.client.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.client.Close()
		c.server.Close()
	})
}

// StartFaultProxy starts a proxy on a free port of 127.0.0.1 that forwards
// to target (host:port). It is closed in tb's cleanup.
func StartFaultProxy(tb testing.TB, target string) *FaultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{ln: ln, target: target, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, for the client to dial.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// CutReply arms the proxy: the next request whose bytes match (match
// sees the bytes of one read from the client, which hold at least the
// start of the request) is passed to the server in full, and its
// connection is then reset as soon as the server starts to answer, so
// the client never gets the answer of a request the server carried out.
// Only one request is cut per call; a nil match picks the next request of
// any connection.
func (p *FaultProxy) CutReply(match func(request []byte) bool) {
	if match == nil {
		match = func([]byte) bool { return true }
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = match
}

// Cuts returns how many answers CutReply has cut so far.
func (p *FaultProxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Refuse makes the proxy reset every new connection at once while on is
// true, as a server that is down or not yet elected would; connections
// already open go on.
func (p *FaultProxy) Refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = on
}

// CutAll resets every open connection now; new ones are accepted (unless
// refused).
func (p *FaultProxy) CutAll() {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// Close stops listening, resets every connection and waits for the
// proxy's goroutines. Calling it twice is safe.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.CutAll()
	p.wg.Wait()
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refusing || p.closed
		p.mu.Unlock()
		if refuse {
			if tc, ok := client.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxyConn{client: client, server: server}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.requests(c)
		go p.answers(c)
	}
}

// requests copies the client's bytes to the server, marking the
// connection doomed when a read holds the request CutReply waits for.
func (p *FaultProxy) requests(c *proxyConn) {
	defer p.wg.Done()
	defer p.forget(c)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.cut != nil && !c.doomed && p.cut(buf[:n]) {
				p.cut = nil
				c.doomed = true
			}
			p.mu.Unlock()
			if _, werr := c.server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// answers copies the server's bytes to the client, unless the connection
// is doomed: then the answer is dropped and the connection reset.
func (p *FaultProxy) answers(c *proxyConn) {
	defer p.wg.Done()
	defer p.forget(c)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			p.mu.Lock()
			doomed := c.doomed
			if doomed {
				p.cuts++
			}
			p.mu.Unlock()
			if doomed {
				return
			}
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forget closes a connection both ways and drops it from the open ones.
func (p *FaultProxy) forget(c *proxyConn) {
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
