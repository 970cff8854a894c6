package api

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// The websocket's own buffers are small: an idle device should cost
// little. A device's frames are small (subscriptions, presence, commands);
// bigger ones are read straight into the message. What the server writes
// goes through a gatherWriter, which borrows a buffer from a pool only
// while frames are being written.
const (
	readBuffer  = 256
	writeBuffer = 128 // fits a control frame (ping, pong, close)
)

// smallBuffers hands the websocket smaller buffers than the HTTP server's
// 4 KiB ones, and its writes to a gatherWriter.
type smallBuffers struct {
	*echo.Response
	out **gatherWriter // set to the connection's writer
}

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := w.Response.Hijack()
	if err != nil {
		return conn, brw, err
	}
	if err := brw.Writer.Flush(); err != nil {
		return conn, brw, err
	}
	// Bytes the client sent after its handshake are kept.
	n := brw.Reader.Buffered()
	var r *bufio.Reader
	if n == 0 {
		r = bufio.NewReaderSize(conn, readBuffer)
	} else {
		buffered, _ := brw.Reader.Peek(n)
		r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn), max(readBuffer, n))
		r.Peek(n)
	}
	g := &gatherWriter{conn: conn}
	*w.out = g
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(g, writeBuffer)), nil
}

// gatherWriter is what the websocket library writes its frames to. Between
// gather and pause (the writing of one of the session's frames), writes
// are gathered in a buffer borrowed from a pool, and send writes the frames
// gathered so far in one write call: a device that has several frames
// waiting (a catch-up, a burst) gets them in few system calls, and an idle
// one holds no buffer. Any other write (the library's pings, pongs and
// close frames, from other goroutines) goes out at once, after what was
// gathered before it: nothing waits behind a batch, and nothing is
// reordered.
type gatherWriter struct {
	conn net.Conn

	mu        sync.Mutex
	gathering bool
	buf       *[]byte // borrowed from gatherBufs while gathering
	timeout   time.Duration
	err       error // the first failed write: every later one fails
}

// gatherLimit is the most a gathering buffer holds before it is sent.
const gatherLimit = 32 << 10

var gatherBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, gatherLimit)
	return &b
}}

func (g *gatherWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if !g.gathering && g.buf == nil {
		n, err := g.conn.Write(p)
		if err != nil {
			g.err = err
		}
		return n, err
	}
	if g.buf == nil {
		g.buf = gatherBufs.Get().(*[]byte)
	}
	*g.buf = append(*g.buf, p...)
	if len(*g.buf) >= gatherLimit || !g.gathering {
		if err := g.sendLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// gather starts gathering the writes of one of the session's frames;
// writing what was gathered may take timeout at most.
func (g *gatherWriter) gather(timeout time.Duration) {
	g.mu.Lock()
	g.gathering, g.timeout = true, timeout
	g.mu.Unlock()
}

// pause ends the gathering of a frame's writes; what was gathered waits
// for send, or goes out before the next write from elsewhere.
func (g *gatherWriter) pause() {
	g.mu.Lock()
	g.gathering = false
	g.mu.Unlock()
}

// send writes out what was gathered and stops gathering.
func (g *gatherWriter) send() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gathering = false
	if g.err != nil {
		g.dropLocked()
		return g.err
	}
	return g.sendLocked()
}

func (g *gatherWriter) sendLocked() error {
	if g.buf == nil {
		return nil
	}
	if len(*g.buf) > 0 {
		// The library's timeouts cover its own calls; this write happens
		// after them, so it has its deadline here.
		g.conn.SetWriteDeadline(time.Now().Add(g.timeout))
		_, err := g.conn.Write(*g.buf)
		g.conn.SetWriteDeadline(time.Time{})
		if err != nil {
			g.err = err
		}
	}
	g.dropLocked()
	return g.err
}

// abandon drops what was gathered: the connection is gone.
func (g *gatherWriter) abandon() {
	g.mu.Lock()
	g.gathering = false
	g.dropLocked()
	g.mu.Unlock()
}

// dropLocked gives the buffer back to the pool.
func (g *gatherWriter) dropLocked() {
	if g.buf == nil {
		return
	}
	if cap(*g.buf) <= 2*gatherLimit { // one grown by a huge frame is not kept
		*g.buf = (*g.buf)[:0]
		gatherBufs.Put(g.buf)
	}
	g.buf = nil
}
