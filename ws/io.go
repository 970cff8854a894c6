package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
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
	http.ResponseWriter
	out **gatherWriter // set to the connection's writer
}

// Hijack takes the connection over from the HTTP server (the websocket
// library's upgrade calls it).
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
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
// gather and pause (the writing of one of the session's frames), the data
// frames written are gathered in a buffer borrowed from a pool, and send
// writes the frames gathered so far in one write call: a device that has
// several frames waiting (a catch-up, a burst) gets them in few system
// calls, and an idle one holds no buffer. Control frames (the library's
// pings, pongs and close frames, written from other goroutines) go out at
// once, after what was gathered before them: nothing waits behind a batch,
// and nothing is reordered.
//
// The writer tells the frames apart by following the frame headers in the
// byte stream (the library writes one frame at a time, under its own
// lock), not by the goroutine that writes: a close frame may be written
// after gather was called and before the library let the session's frame
// through, and it must not be held (the peer would never see it).
type gatherWriter struct {
	conn net.Conn

	mu        sync.Mutex
	gathering bool
	buf       *[]byte // borrowed from gatherBufs while gathering
	timeout   time.Duration
	err       error // the first failed write: every later one fails
	frame     frameCursor
}

// frameCursor follows the websocket frames in the bytes written, to know
// which frame each byte belongs to.
type frameCursor struct {
	hdr     [14]byte // the header of the next frame, as far as it came
	nhdr    int
	left    int64 // payload bytes of the current frame still to come
	control bool  // the current frame is a control frame
}

// next returns how many of p's leading bytes belong to one frame (header
// and payload bytes alike), and whether that frame is a control frame.
func (f *frameCursor) next(p []byte) (n int, control bool) {
	for n < len(p) && f.left == 0 {
		// A header: 2 bytes, then 2 or 8 of extended length, then a
		// 4-byte mask key if masked.
		f.hdr[f.nhdr] = p[n]
		f.nhdr++
		n++
		if f.nhdr < 2 {
			continue
		}
		size := 2
		switch f.hdr[1] & 0x7f {
		case 126:
			size += 2
		case 127:
			size += 8
		}
		if f.hdr[1]&0x80 != 0 {
			size += 4
		}
		if f.nhdr < size {
			continue
		}
		f.control = f.hdr[0]&0x08 != 0
		switch l := f.hdr[1] & 0x7f; l {
		case 126:
			f.left = int64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 127:
			f.left = int64(binary.BigEndian.Uint64(f.hdr[2:10]) &^ (1 << 63))
		default:
			f.left = int64(l)
		}
		f.nhdr = 0
		if f.left == 0 {
			return n, f.control // a frame without payload ends here
		}
	}
	take := int(min(f.left, int64(len(p)-n)))
	f.left -= int64(take)
	return n + take, f.control
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
	now := false // something in p goes out at once
	for rest := p; len(rest) > 0; {
		n, control := g.frame.next(rest)
		if !g.gathering || control {
			now = true
		}
		if now && g.buf == nil && n == len(rest) {
			// Nothing waits before it: no copy.
			if _, err := g.conn.Write(rest); err != nil {
				g.err = err
				return len(p) - len(rest), err
			}
			return len(p), nil
		}
		if g.buf == nil {
			g.buf = gatherBufs.Get().(*[]byte)
		}
		*g.buf = append(*g.buf, rest[:n]...)
		rest = rest[n:]
	}
	if now || len(*g.buf) >= gatherLimit {
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
		if g.timeout > 0 {
			g.conn.SetWriteDeadline(time.Now().Add(g.timeout))
		}
		_, err := g.conn.Write(*g.buf)
		if g.timeout > 0 {
			g.conn.SetWriteDeadline(time.Time{})
		}
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
