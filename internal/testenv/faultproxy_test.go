package testenv_test

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// lineServer answers each line it reads with "ok " and the line, and
// keeps the lines it got.
type lineServer struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []string
	done sync.WaitGroup
}

func startLineServer(t *testing.T) *lineServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &lineServer{ln: ln}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					s.mu.Lock()
					s.got = append(s.got, strings.TrimSpace(line))
					s.mu.Unlock()
					if _, err := c.Write([]byte("ok " + line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.done.Wait() })
	return s
}

func (s *lineServer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// ask sends a line on c and returns the answer, or the error reading it.
func ask(t *testing.T, c net.Conn, line string) (string, error) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(answer), err
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestFaultProxy(t *testing.T) {
	srv := startLineServer(t)
	p := testenv.StartFaultProxy(t, srv.ln.Addr().String())

	c := dial(t, p.Addr())
	answer, err := ask(t, c, "hello")
	require.NoError(t, err)
	assert.Equal(t, "ok hello", answer, "bytes are forwarded both ways")

	// The answer to the matching request is lost; the server got it.
	p.CutReply(func(req []byte) bool { return bytes.Contains(req, []byte("insert")) })
	answer, err = ask(t, c, "find")
	require.NoError(t, err)
	assert.Equal(t, "ok find", answer, "another request is not cut")
	_, err = ask(t, c, "insert 1")
	assert.Error(t, err, "the client gets no answer")
	assert.Equal(t, 1, p.Cuts())
	assert.Equal(t, []string{"hello", "find", "insert 1"}, srv.lines(), "the server carried the request out")

	// Only one request is cut per call.
	c2 := dial(t, p.Addr())
	answer, err = ask(t, c2, "insert 2")
	require.NoError(t, err)
	assert.Equal(t, "ok insert 2", answer)
	assert.Equal(t, 1, p.Cuts())

	// Refused: a new connection is reset before anything gets through;
	// an open one goes on.
	p.Refuse(true)
	if refused, err := net.Dial("tcp", p.Addr()); err == nil {
		// The reset may come before the dial ends, or after.
		_, err = ask(t, refused, "while refused")
		assert.Error(t, err)
		refused.Close()
	}
	answer, err = ask(t, c2, "still open")
	require.NoError(t, err)
	assert.Equal(t, "ok still open", answer)
	p.Refuse(false)
	c3 := dial(t, p.Addr())
	answer, err = ask(t, c3, "back")
	require.NoError(t, err)
	assert.Equal(t, "ok back", answer)
	assert.NotContains(t, srv.lines(), "while refused")

	// CutAll: every open connection is reset; new ones work.
	p.CutAll()
	_, err = ask(t, c2, "after cut")
	assert.Error(t, err)
	_, err = ask(t, c3, "after cut")
	assert.Error(t, err)
	c4 := dial(t, p.Addr())
	answer, err = ask(t, c4, "new")
	require.NoError(t, err)
	assert.Equal(t, "ok new", answer)

	p.Close()
	p.Close()
}
