package api_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/api"
)

// rawRequest opens a TCP connection to ts and writes head (a request line
// and headers) and the start of a body, then nothing more.
func rawRequest(t *testing.T, ts *testServer, head string, body []byte) net.Conn {
	t.Helper()
	u, err := url.Parse(ts.URL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = conn.Write(append([]byte(strings.ReplaceAll(head, "\n", "\r\n")+"\r\n"), body...))
	require.NoError(t, err)
	return conn
}

// A client that stops sending its request body is cut off: it holds a
// goroutine (and, for an upload, a file) for IdleTimeout, not for ever.
// That holds before sign-in too (accepting an invite).
func TestStalledRequestBodyIsCutOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withAPI(func(c *api.Config) { c.IdleTimeout = 200 * time.Millisecond }))
	f := newFixture(t, ts)
	before := ts.eventCount(t, f.Room)
	token := ts.tok(t, owner)
	multipartHead := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nsome bytes"
	for _, c := range []struct {
		name, head string
		body       string
	}{
		{"message", "POST /api/v1/rooms/" + f.Room + "/messages HTTP/1.1\nHost: x\nAuthorization: Bearer " + token +
			"\nContent-Type: application/json\nContent-Length: 100\n", `{"body": "hel`},
		{"invite accept (no token)", "POST /api/v1/invites/" + f.InviteCode + "/accept HTTP/1.1\nHost: x\n" +
			"Content-Type: application/json\nContent-Length: 100\n", `{"name": "Ca`},
		{"upload", "POST /api/v1/rooms/" + f.Room + "/attachments HTTP/1.1\nHost: x\nAuthorization: Bearer " + token +
			"\nContent-Type: multipart/form-data; boundary=b\nContent-Length: 100000\n", multipartHead},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := rawRequest(t, ts, c.head, []byte(c.body))
			// Far longer than IdleTimeout: only a server that never gives
			// up makes this read wait so long.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				resp.Body.Close()
				assert.GreaterOrEqual(t, resp.StatusCode, 400, "a body that never came is no request")
				assert.Less(t, resp.StatusCode, 500)
			} else {
				var ne net.Error
				require.False(t, errorsAs(err, &ne) && ne.Timeout(), "the server still waits for the body: %v", err)
			}
		})
	}
	assert.Equal(t, before, ts.eventCount(t, f.Room), "nothing was written")
	left, err := os.ReadDir(ts.Config.SpoolDir)
	require.NoError(t, err)
	assert.Empty(t, left, "the stalled upload's spool file is gone")
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// A client that stops taking a download is cut off after IdleTimeout: the
// server does not hold the file open for ever.
func TestStalledDownloadIsCutOff(t *testing.T) {
	t.Parallel()
	// Long enough that the upload below, which must keep moving, is not
	// cut off on a busy machine.
	const idle = 2 * time.Second
	ts := newTestServer(t, withAPI(func(c *api.Config) { c.IdleTimeout = idle }))
	f := newFixture(t, ts)
	// Larger than what the loopback's socket buffers hold, so that the
	// server's writes block while the client does not read.
	data := make([]byte, 24<<20)
	_, err := rand.Read(data[:1<<20])
	require.NoError(t, err)
	id := ts.must(t, 201, "POST", "/rooms/"+f.Room+"/attachments", owner, fileUpload(t, "big.bin", data)).str(t, "id")

	conn := rawRequest(t, ts, fmt.Sprintf("GET /api/v1/rooms/%s/attachments/%s HTTP/1.1\nHost: x\nAuthorization: Bearer %s\n",
		f.Room, id, ts.tok(t, owner)), nil)
	time.Sleep(3 * idle) // reading nothing
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the answer started before the client stopped reading")
	require.Equal(t, 200, resp.StatusCode)
	got, err := io.Copy(io.Discard, resp.Body)
	require.Error(t, err, "the download was cut off")
	var ne net.Error
	assert.False(t, errorsAs(err, &ne) && ne.Timeout(), "the connection was closed, not left hanging: %v", err)
	assert.Less(t, got, int64(len(data)), "the server gave up on the stalled client")

	// A client that takes its download gets all of it.
	r := ts.do(t, "GET", "/rooms/"+f.Room+"/attachments/"+id, ts.tok(t, owner), nil)
	require.Equal(t, 200, r.Status)
	assert.True(t, bytes.Equal(data, r.Body), "a download that keeps moving is whole")
}

// Uploads spooled by a process that died mid-upload are removed when the
// next one starts; younger files (another process's running uploads) stay.
func TestSpoolLeftoversRemovedAtStart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "spool")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	old, fresh := filepath.Join(dir, "upload-old"), filepath.Join(dir, "upload-fresh")
	require.NoError(t, os.WriteFile(old, []byte("left by a crash"), 0o600))
	require.NoError(t, os.WriteFile(fresh, []byte("being uploaded"), 0o600))
	long := time.Now().Add(-3 * time.Hour)
	require.NoError(t, os.Chtimes(old, long, long))

	newTestServer(t, withAPI(func(c *api.Config) { c.SpoolDir = dir }))
	_, err := os.Stat(old)
	assert.True(t, os.IsNotExist(err), "the crash's leftover is removed")
	_, err = os.Stat(fresh)
	assert.NoError(t, err, "a running upload's file stays")
}

// X-Forwarded-For names the client only when a configured proxy sent it:
// otherwise anyone gets a fresh rate limit per request by writing another
// address there.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	accept := func(ts *testServer, xff string) int {
		req, err := http.NewRequest("POST", ts.URL+"/api/v1/invites/nosuchcode/accept", strings.NewReader(`{"name":"A","email":"a@b.example"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	limited := func(c *api.Config) { c.RateLimit, c.RateBurst = 0.01, 2 }

	ts := newTestServer(t, withAPI(limited))
	var statuses []int
	for i := range 6 {
		statuses = append(statuses, accept(ts, fmt.Sprintf("203.0.113.%d", i+1)))
	}
	assert.Contains(t, statuses, 429, "by default the header is ignored: one address, one limit (%v)", statuses)

	_, loopback, err := net.ParseCIDR("127.0.0.0/8")
	require.NoError(t, err)
	ts = newTestServer(t, withAPI(limited), withAPI(func(c *api.Config) { c.TrustedProxies = []*net.IPNet{loopback} }))
	statuses = nil
	for i := range 6 {
		statuses = append(statuses, accept(ts, fmt.Sprintf("203.0.113.%d", i+1)))
	}
	assert.NotContains(t, statuses, 429, "behind a trusted proxy each client has its own limit (%v)", statuses)
	statuses = nil
	for range 4 {
		statuses = append(statuses, accept(ts, "198.51.100.7"))
	}
	assert.Contains(t, statuses, 429, "and one client is limited (%v)", statuses)
}
