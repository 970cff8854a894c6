package ws

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingConn records the write calls made on it.
type countingConn struct {
	net.Conn
	mu        sync.Mutex
	writes    [][]byte
	deadlines []time.Time
	fail      error
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.mu.Unlock()
	return nil
}

func TestGatherWriterSendsWhatWaitedInOneWrite(t *testing.T) {
	c := &countingConn{}
	g := &gatherWriter{conn: c}

	g.gather(time.Second)
	for _, p := range []string{"\x81\x05", "hello", "\x81\x05", "world"} {
		n, err := g.Write([]byte(p))
		require.NoError(t, err)
		assert.Equal(t, len(p), n)
	}
	assert.Empty(t, c.writes, "nothing goes out while frames are gathered")
	require.NoError(t, g.send())
	require.Len(t, c.writes, 1)
	assert.Equal(t, "\x81\x05hello\x81\x05world", string(c.writes[0]))
	assert.Nil(t, g.buf, "the buffer goes back to the pool")
	require.Len(t, c.deadlines, 2, "the gathered write has a deadline, cleared after it")
	assert.False(t, c.deadlines[0].IsZero())
	assert.True(t, c.deadlines[1].IsZero())

	// Outside of gathering (the library's pings and pongs), writes go
	// straight out.
	_, err := g.Write([]byte("\x89\x00"))
	require.NoError(t, err)
	require.Len(t, c.writes, 2)
	assert.Equal(t, "\x89\x00", string(c.writes[1]))

	// Sending with nothing gathered writes nothing.
	g.gather(time.Second)
	require.NoError(t, g.send())
	assert.Len(t, c.writes, 2)
}

// TestGatherWriterSendsControlFramesAtOnce: a ping (or pong, or close)
// written between the gathered frames goes out at once, after what was
// gathered before it, so that its answer is not held up by a long batch.
func TestGatherWriterSendsControlFramesAtOnce(t *testing.T) {
	c := &countingConn{}
	g := &gatherWriter{conn: c}
	g.gather(time.Second)
	_, err := g.Write([]byte("\x81\x05hello"))
	require.NoError(t, err)
	g.pause() // the frame is written; more are to come
	assert.Empty(t, c.writes)
	_, err = g.Write([]byte("\x89\x04ping")) // from another goroutine
	require.NoError(t, err)
	require.Len(t, c.writes, 1, "the ping goes out at once")
	assert.Equal(t, "\x81\x05hello\x89\x04ping", string(c.writes[0]), "after what was gathered before it")
	_, err = g.Write([]byte("\x81\x05world"))
	require.NoError(t, err)
	require.NoError(t, g.send())
	require.Len(t, c.writes, 2)
	assert.Equal(t, "\x81\x05world", string(c.writes[1]))
}

// TestGatherWriterNeverHoldsACloseFrame: gather is called before the
// library lets the session's frame through its lock; a close frame written
// by another goroutine in between goes out at once (held, the peer would
// never see it and the close handshake would hang), and the data frame
// after it is still gathered.
func TestGatherWriterNeverHoldsACloseFrame(t *testing.T) {
	c := &countingConn{}
	g := &gatherWriter{conn: c}
	g.gather(time.Second)
	closeFrame := "\x88\x05\x03\xf0bad"
	_, err := g.Write([]byte(closeFrame))
	require.NoError(t, err)
	require.Len(t, c.writes, 1, "the close frame goes out at once")
	assert.Equal(t, closeFrame, string(c.writes[0]))
	_, err = g.Write([]byte("\x81\x02hi"))
	require.NoError(t, err)
	assert.Len(t, c.writes, 1, "the session's frame is gathered")
	require.NoError(t, g.send())
	require.Len(t, c.writes, 2)
	assert.Equal(t, "\x81\x02hi", string(c.writes[1]))
}

// TestGatherWriterFollowsFramesAcrossWrites: frames come in pieces (a
// header split by a full buffer, a big payload written straight through,
// 16- and 64-bit lengths, masked frames); the writer still knows where
// each frame ends, so a ping after them is recognised.
func TestGatherWriterFollowsFramesAcrossWrites(t *testing.T) {
	c := &countingConn{}
	g := &gatherWriter{conn: c}
	big := bytes.Repeat([]byte("y"), 70000)
	var stream []byte
	stream = append(stream, 0x81, 126, 0x01, 0x2c) // 300 bytes
	stream = append(stream, big[:300]...)
	stream = append(stream, 0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70) // 70000 bytes
	stream = append(stream, big...)
	stream = append(stream, 0x81, 0x83, 1, 2, 3, 4, 'a', 'b', 'c') // masked, 3 bytes
	stream = append(stream, 0x81, 0x00)                            // empty
	g.gather(time.Second)
	for _, cut := range []int{1, 3, 100, 1000, 50000, len(stream)} { // pieces of every size
		if cut > len(stream) {
			cut = len(stream)
		}
		_, err := g.Write(stream[:cut])
		require.NoError(t, err)
		stream = stream[cut:]
	}
	require.Empty(t, stream)
	g.pause()
	sent := len(c.writes) // a full buffer went out on its own
	_, err := g.Write([]byte("\x89"))
	require.NoError(t, err)
	_, err = g.Write([]byte("\x00"))
	require.NoError(t, err)
	require.Greater(t, len(c.writes), sent, "the ping, split in two, goes out at once")
	var all []byte
	for _, w := range c.writes {
		all = append(all, w...)
	}
	assert.Equal(t, 4+300+10+70000+9+2+2, len(all), "with every frame before it")
	assert.Equal(t, "\x89\x00", string(all[len(all)-2:]))
}

func TestGatherWriterSendsWhenTheBufferIsFull(t *testing.T) {
	c := &countingConn{}
	g := &gatherWriter{conn: c}
	g.gather(time.Second)
	frame := append([]byte{0x81, 126, 0x03, 0xe8}, bytes.Repeat([]byte("x"), 1000)...)
	total := 0
	for total < 3*gatherLimit {
		_, err := g.Write(frame)
		require.NoError(t, err)
		total += len(frame)
	}
	require.NoError(t, g.send())
	written := 0
	for _, w := range c.writes {
		assert.LessOrEqual(t, len(w), gatherLimit+len(frame))
		written += len(w)
	}
	assert.Equal(t, total, written, "every byte goes out, in bounded writes")
	assert.GreaterOrEqual(t, len(c.writes), 3)
}

func TestGatherWriterFailureSticks(t *testing.T) {
	boom := errors.New("connection reset")
	c := &countingConn{fail: boom}
	g := &gatherWriter{conn: c}
	g.gather(time.Second)
	_, err := g.Write([]byte("\x81\x05frame"))
	require.NoError(t, err, "gathered: the failure shows when it is sent")
	assert.ErrorIs(t, g.send(), boom)
	_, err = g.Write([]byte("\x81\x05later"))
	assert.ErrorIs(t, err, boom, "a connection that failed once takes no more writes")
	assert.Nil(t, g.buf)
}
