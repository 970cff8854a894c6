package replymail

import (
	"io"
	"net"
	"sync"
	"time"
)

// limitListener bounds the connections served at once, and the life of
// each: go-smtp serves every connection it accepts, and moves a
// connection's deadlines on with each command. A connection over the
// bound is answered 421 (try again later) and closed at once.
type limitListener struct {
	net.Listener
	slots chan struct{}
	life  time.Duration
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			bc := &boundConn{Conn: c, end: time.Now().Add(l.life), release: func() { <-l.slots }}
			bc.SetDeadline(bc.end)
			return bc, nil
		default:
			c.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c, "421 4.3.2 Too many connections, try again later\r\n")
			c.Close()
		}
	}
}

// boundConn is a connection whose deadlines never pass its end, and which
// frees its slot when closed.
type boundConn struct {
	net.Conn
	end     time.Time
	release func()
	once    sync.Once
}

func (c *boundConn) cap(t time.Time) time.Time {
	if t.IsZero() || t.After(c.end) {
		return c.end
	}
	return t
}

func (c *boundConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.cap(t)) }
func (c *boundConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.cap(t)) }
func (c *boundConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.cap(t)) }

func (c *boundConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
