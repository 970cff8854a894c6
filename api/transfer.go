package api

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
)

// Deadlines of request bodies and answers.
//
// http.Server's ReadTimeout and WriteTimeout would bound each request as a
// whole, and so cut off websockets and the large upload of a slow phone.
// Instead every request gets a read and a write deadline IdleTimeout
// ahead when it starts, and an upload or a download that keeps moving has
// them moved on with each read or write, up to TransferTimeout in all: a
// client that stops sending its body or taking its answer holds a
// goroutine and a file for IdleTimeout at most. The websocket has its own
// (keep-alive pings and the write timeout).

// deadlines sets a request's first deadlines.
func (s *Server) deadlines(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rc := http.NewResponseController(c.Response())
		d := time.Now().Add(s.cfg.IdleTimeout)
		if c.Path() == wsRoute {
			// None: a connection that served earlier requests may still
			// carry their deadlines into the websocket.
			d = time.Time{}
		}
		// Errors mean the connection has no deadlines to set (HTTP/2
		// streams in some setups, a test's recorder): nothing to bound.
		_ = rc.SetReadDeadline(d)
		_ = rc.SetWriteDeadline(d)
		return next(c)
	}
}

// transfer moves a request's deadlines on while its body or its answer
// keeps moving.
type transfer struct {
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time // zero: no bound in all
}

func (s *Server) transfer(c echo.Context) *transfer {
	return &transfer{rc: http.NewResponseController(c.Response()), idle: s.cfg.IdleTimeout,
		end: time.Now().Add(s.cfg.TransferTimeout)}
}

// next is the deadline of the next read or write.
func (t *transfer) next() time.Time {
	d := time.Now().Add(t.idle)
	if !t.end.IsZero() && d.After(t.end) {
		return t.end
	}
	return d
}

// body wraps a request body: each read may wait IdleTimeout.
func (t *transfer) body(r io.ReadCloser) io.ReadCloser { return &transferReader{r, t} }

type transferReader struct {
	io.ReadCloser
	t *transfer
}

func (r *transferReader) Read(p []byte) (int, error) {
	_ = r.t.rc.SetReadDeadline(r.t.next())
	n, err := r.ReadCloser.Read(p)
	if os.IsTimeout(err) {
		err = dealroom.Errorf(dealroom.EBADREQUEST, "the request body stopped arriving; send it again")
	}
	return n, err
}

// answer wraps the response writer: each write may wait IdleTimeout.
// (It hides the writer's ReadFrom, so a download is copied through a
// buffer instead of sendfile: the price of a deadline per write.)
func (t *transfer) answer(w http.ResponseWriter) http.ResponseWriter { return &transferWriter{w, t} }

type transferWriter struct {
	http.ResponseWriter
	t *transfer
}

func (w *transferWriter) Write(p []byte) (int, error) {
	_ = w.t.rc.SetWriteDeadline(w.t.next())
	return w.ResponseWriter.Write(p)
}

func (w *transferWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wsRoute is the websocket's route.
const wsRoute = "/api/v1/ws"

// spoolAge is how much older than the longest upload a spooled file must
// be to be taken for the leftover of a process that died mid-upload.
const spoolAge = time.Hour

// cleanSpool removes the files in dir older than age: uploads spooled by
// processes that died (other processes may share the directory; their
// running uploads are younger).
func cleanSpool(dir string, now time.Time, age time.Duration) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && info.Mode().IsRegular() && now.Sub(info.ModTime()) > age {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}
