package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"dealroom/internal/netguard"
)

// Fault is how the receiver answers one request on purpose.
type Fault int

// Faults.
const (
	OK      Fault = iota
	Fail500       // answers 500
	Hang          // answers nothing until the client gives up
	Reset         // closes the connection without an answer
	Slow          // answers 200 after a moment
)

// Received is a delivery the receiver verified and took (answered 2xx).
type Received struct {
	ID        string // webhook-id
	Timestamp string
	Body      []byte
	// Event is the body's event, as far as the tests read it.
	Event struct {
		ID         string `json:"id"`
		RoomID     string `json:"room_id"`
		Seq        int64  `json:"seq"`
		Type       string `json:"type"`
		Visibility string `json:"visibility"`
	}
}

// Receiver is an HTTPS server on 127.0.0.1 that receives webhooks. It
// verifies every request's signature with the secrets it is given, written
// here from the Standard Webhooks specification (not with the sender's
// code): HMAC-SHA256, keyed by the base64-decoded secret after "whsec_",
// over webhook-id "." webhook-timestamp "." body, compared to each "v1,"
// signature of the header. A request without a valid signature is
// answered 401 and counted in BadSignatures.
type Receiver struct {
	*httptest.Server
	mu       sync.Mutex
	secrets  map[string]string // path → secret
	faults   []Fault
	always   Fault
	failRoom map[string]bool
	got      []Received
	attempts int
	bad      []string
}

// StartReceiver starts a receiver for the test's life.
func StartReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{secrets: map[string]string{}}
	r.Server = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	tb.Cleanup(r.Close)
	return r
}

// SetSecret sets the secret the deliveries to path are verified with.
func (r *Receiver) SetSecret(path, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[path] = secret
}

// Next queues faults for the next requests, in order.
func (r *Receiver) Next(faults ...Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, faults...)
}

// Always makes every request (after those queued) meet fault; OK ends it.
func (r *Receiver) Always(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.always = f
}

// FailRoom makes the deliveries of the room's events answer 500 (fail)
// or not.
func (r *Receiver) FailRoom(room string, fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failRoom == nil {
		r.failRoom = map[string]bool{}
	}
	r.failRoom[room] = fail
}

// Got returns the deliveries taken, in the order they came.
func (r *Receiver) Got() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// Attempts counts the requests that came, whatever their answer.
func (r *Receiver) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// BadSignatures lists the webhook-ids of requests whose signature did not
// verify.
func (r *Receiver) BadSignatures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// Guard returns the netguard guard a sender uses to reach the receiver:
// loopback (127.0.0.1 and ::1) allowed, the receiver's certificate trusted.
func (r *Receiver) Guard(timeout time.Duration) *netguard.Guard { return GuardFor(timeout, r) }

// GuardFor returns the guard that reaches every one of rs.
func GuardFor(timeout time.Duration, rs ...*Receiver) *netguard.Guard {
	pool := x509.NewCertPool()
	for _, r := range rs {
		pool.AddCert(r.Certificate())
	}
	return netguard.New(netguard.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		TLS: &tls.Config{RootCAs: pool}, Timeout: timeout})
}

// CertPEM returns the receiver's certificate in PEM, for a server's
// DEALROOM_OUTBOUND_CA_FILE.
func (r *Receiver) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})
}

// Verify reports whether sigHeader holds a valid signature of body under
// id and ts with secret.
func Verify(secret, id, ts string, body []byte, sigHeader string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigHeader) {
		v, sig, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	r.mu.Lock()
	r.attempts++
	secret := r.secrets[req.URL.Path]
	f := r.always
	if len(r.faults) > 0 {
		f, r.faults = r.faults[0], r.faults[1:]
	}
	ok := id != "" && ts != "" && Verify(secret, id, ts, body, req.Header.Get("webhook-signature"))
	var rec Received
	rec.ID, rec.Timestamp, rec.Body = id, ts, body
	_ = json.Unmarshal(body, &rec.Event)
	if r.failRoom[rec.Event.RoomID] {
		f = Fail500
	}
	if !ok {
		r.bad = append(r.bad, id)
	}
	r.mu.Unlock()
	if !ok {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	switch f {
	case Fail500:
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
		return
	case Hang:
		select {
		case <-req.Context().Done():
		case <-time.After(30 * time.Second):
		}
		return
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case Slow:
		time.Sleep(50 * time.Millisecond)
	}
	r.mu.Lock()
	r.got = append(r.got, rec)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Arrived returns the event ids taken of each room, first arrivals in the
// order they came. It checks that every signature verified, that a repeat
// came under the webhook-id of its first arrival, that a webhook-id names
// one event, and that each room's first arrivals never went back in seq.
func Arrived(tb testing.TB, r *Receiver) map[string][]string {
	tb.Helper()
	assert.Empty(tb, r.BadSignatures(), "every signature verifies")
	idOf, evOf := map[string]string{}, map[string]string{}
	last := map[string]int64{}
	out := map[string][]string{}
	for _, g := range r.Got() {
		ev := g.Event
		if prev, ok := idOf[ev.ID]; ok {
			assert.Equal(tb, prev, g.ID, "a repeat of event %s comes under its webhook-id", ev.ID)
			continue
		}
		assert.Empty(tb, evOf[g.ID], "webhook-id %s names one event", g.ID)
		idOf[ev.ID], evOf[g.ID] = g.ID, ev.ID
		assert.Greater(tb, ev.Seq, last[ev.RoomID], "room %s in seq order", ev.RoomID)
		last[ev.RoomID] = ev.Seq
		out[ev.RoomID] = append(out[ev.RoomID], ev.ID)
	}
	return out
}
