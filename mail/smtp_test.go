package mail

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testenv"
)

const from = "Dealroom <rooms@example.com>"

// fakeClock stands in for the sender's clock and waits: a wait moves the
// clock on at once and is recorded, so tests count waits instead of
// waiting. With frozen set, waits leave the clock where it is.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	frozen  bool
	waits   []time.Duration
	onSleep func(n int) // called with the number of waits so far, after one
}

func installClock(s *SMTP) *fakeClock {
	c := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	s.now = c.now
	s.sleep = c.sleep
	return c
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	if !c.frozen {
		c.t = c.t.Add(d)
	}
	n, f := len(c.waits), c.onSleep
	c.mu.Unlock()
	if f != nil {
		f(n)
	}
	return ctx.Err()
}

func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

// open returns a sender to srv, with cfg's other fields, and a fake clock.
func open(t *testing.T, srv *testenv.SMTPServer, cfg Config) (*SMTP, *fakeClock) {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = srv.URL()
	}
	if cfg.From == "" {
		cfg.From = from
	}
	if cfg.RootCAs == nil {
		cfg.RootCAs = srv.RootCAs()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s, err := Open(cfg)
	require.NoError(t, err)
	smtp := s.(*SMTP)
	return smtp, installClock(smtp)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func simple(to string) Message {
	return Message{To: to, Subject: "Your sign-in link", Text: "Open https://dealroom.example.com/signin/abc"}
}

func TestSendTextHTMLAndHeaders(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, _ := open(t, srv, Config{})
	m := Message{
		To:          "Ana Lima <ana@customer.example>",
		Subject:     "Acme × Globex: 2 new messages",
		Text:        "Bob wrote in the room:\nSee you on Monday.\n",
		HTML:        "<p>Bob wrote in the room:</p>\n<p>See you on <b>Monday</b>.</p>\n",
		ReplyTo:     "bob@seller.example",
		MessageID:   "n3.r42@dealroom.example.com",
		InReplyTo:   "n2.r42@dealroom.example.com",
		References:  []string{"n1.r42@dealroom.example.com", "n2.r42@dealroom.example.com"},
		Unsubscribe: "https://dealroom.example.com/unsubscribe?t=tok3n",
	}
	require.NoError(t, s.Send(ctxT(t), m))

	got := srv.Messages()
	require.Len(t, got, 1)
	r := got[0]
	require.NoError(t, r.ParseErr)
	assert.Equal(t, "rooms@example.com", r.From, "envelope sender")
	assert.Equal(t, []string{"ana@customer.example"}, r.To, "envelope recipient")
	assert.False(t, r.TLS)

	fromHdr, err := r.Header.AddressList("From")
	require.NoError(t, err)
	assert.Equal(t, []*netmail.Address{{Name: "Dealroom", Address: "rooms@example.com"}}, fromHdr)
	toHdr, err := r.Header.AddressList("To")
	require.NoError(t, err)
	assert.Equal(t, []*netmail.Address{{Name: "Ana Lima", Address: "ana@customer.example"}}, toHdr)
	replyTo, err := r.Header.AddressList("Reply-To")
	require.NoError(t, err)
	assert.Equal(t, "bob@seller.example", replyTo[0].Address)
	assert.Equal(t, m.Subject, r.Subject)
	assert.Equal(t, "multipart/alternative", r.ContentType)
	assert.Equal(t, m.Text, crlf(r.Text))
	assert.Equal(t, m.HTML, crlf(r.HTML))
	assert.Equal(t, "<https://dealroom.example.com/unsubscribe?t=tok3n>", r.Header.Get("List-Unsubscribe"))
	assert.Equal(t, "List-Unsubscribe=One-Click", r.Header.Get("List-Unsubscribe-Post"))
	assert.Equal(t, "<n3.r42@dealroom.example.com>", r.Header.Get("Message-Id"))
	assert.Equal(t, "<n2.r42@dealroom.example.com>", r.Header.Get("In-Reply-To"))
	assert.Equal(t, "<n1.r42@dealroom.example.com> <n2.r42@dealroom.example.com>", r.Header.Get("References"))
	_, err = r.Header.Date()
	assert.NoError(t, err, "a Date header")
}

// crlf turns the CRLF line ends of a received part into LF.
func crlf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func TestSendTextOnlyWithMadeMessageIDs(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, _ := open(t, srv, Config{})
	for range 2 {
		require.NoError(t, s.Send(ctxT(t), simple("ana@customer.example")))
	}
	got := srv.Messages()
	require.Len(t, got, 2)
	for _, r := range got {
		require.NoError(t, r.ParseErr)
		assert.Equal(t, "text/plain", r.ContentType)
		assert.Equal(t, simple("").Text, r.Text)
		assert.Empty(t, r.HTML)
		assert.Empty(t, r.Header.Get("List-Unsubscribe"), "no unsubscribe link unless given")
		assert.Regexp(t, `^<[0-9a-f]{32}@example\.com>$`, r.Header.Get("Message-Id"), "made at the From domain")
	}
	assert.NotEqual(t, got[0].Header.Get("Message-Id"), got[1].Header.Get("Message-Id"))
}

func TestStartTLSWithAuth(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{TLS: testenv.SMTPStartTLS, User: "dealroom", Password: "s3cret pass"})
	s, _ := open(t, srv, Config{URL: srv.URL() + "?tls=required"})
	require.NoError(t, s.Send(ctxT(t), simple("ana@customer.example")))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS, "sent after STARTTLS")
	assert.Equal(t, "dealroom", got[0].User, "authenticated")

	// Sends at once share the client's settings and nothing else.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			assert.NoError(t, s.Send(ctxT(t), simple(fmt.Sprintf("p%d@customer.example", i))))
		})
	}
	wg.Wait()
	assert.Len(t, srv.Messages(), 9)
}

func TestImplicitTLSWithAuth(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{TLS: testenv.SMTPImplicitTLS, User: "dealroom", Password: "pw"})
	require.True(t, strings.HasPrefix(srv.URL(), "smtps://"))
	s, _ := open(t, srv, Config{})
	require.NoError(t, s.Send(ctxT(t), simple("ana@customer.example")))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS)
	assert.Equal(t, "dealroom", got[0].User)
}

// permanent checks that err is a permanent failure after one attempt.
func permanent(t *testing.T, err error, clock *fakeClock) {
	t.Helper()
	require.Error(t, err)
	t.Log(err)
	assert.False(t, Temporary(err), "permanent: %v", err)
	assert.NotEqual(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err))
	assert.Empty(t, clock.recorded(), "no retry")
}

func TestWrongPasswordIsPermanent(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{TLS: testenv.SMTPStartTLS, User: "dealroom", Password: "right"})
	s, clock := open(t, srv, Config{URL: "smtp://dealroom:wrong@" + srv.Addr()})
	err := s.Send(ctxT(t), simple("ana@customer.example"))
	permanent(t, err, clock)
	assert.Contains(t, err.Error(), "535")
	assert.NotContains(t, err.Error(), "wrong", "the password is not in the error")
	assert.Empty(t, srv.Messages())
}

func TestUntrustedCertificateIsPermanent(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{TLS: testenv.SMTPStartTLS})
	s, clock := open(t, srv, Config{RootCAs: x509.NewCertPool()}) // not the test's certificate
	err := s.Send(ctxT(t), simple("ana@customer.example"))
	permanent(t, err, clock)
	assert.Empty(t, srv.Messages())
}

func TestNoPasswordWithoutTLS(t *testing.T) {
	// A server offering no STARTTLS offers no AUTH either; the client must
	// not send the password in the clear, and says why it could not send.
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, clock := open(t, srv, Config{URL: "smtp://dealroom:pw@" + srv.Addr()})
	permanent(t, s.Send(ctxT(t), simple("ana@customer.example")), clock)
	assert.Empty(t, srv.Messages())

	// And with ?tls=required nothing is sent without STARTTLS.
	s, clock = open(t, srv, Config{URL: "smtp://" + srv.Addr() + "?tls=required"})
	permanent(t, s.Send(ctxT(t), simple("ana@customer.example")), clock)
	assert.Empty(t, srv.Messages())
}

func TestRetriesTemporaryRefusals(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, clock := open(t, srv, Config{Backoff: time.Second})
	srv.Refuse(2, 451)
	require.NoError(t, s.Send(ctxT(t), simple("ana@customer.example")))
	assert.Equal(t, 2, srv.Refused())
	assert.Len(t, srv.Messages(), 1, "delivered once")

	waits := clock.recorded()
	require.Len(t, waits, 2, "two retries")
	assert.True(t, waits[0] >= 500*time.Millisecond && waits[0] <= time.Second, "first retry after 0.5-1s: %v", waits[0])
	assert.True(t, waits[1] >= time.Second && waits[1] <= 2*time.Second, "second after 1-2s: %v", waits[1])
}

func TestTemporaryRefusalsOutlastingRetries(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, clock := open(t, srv, Config{Attempts: 3})
	srv.Refuse(10, 451)
	err := s.Send(ctxT(t), simple("ana@customer.example"))
	require.Error(t, err)
	assert.True(t, Temporary(err), "%v", err)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err))
	assert.Contains(t, err.Error(), "451")
	assert.Equal(t, 3, srv.Refused(), "three attempts")
	assert.Len(t, clock.recorded(), 2)
	assert.Empty(t, srv.Messages())
}

func TestPermanentRefusalIsNotRetried(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, clock := open(t, srv, Config{})
	srv.Refuse(1, 550)
	err := s.Send(ctxT(t), simple("nobody@customer.example"))
	permanent(t, err, clock)
	assert.Contains(t, err.Error(), "550")
	assert.Equal(t, 1, srv.Refused())
	assert.Empty(t, srv.Messages())
}

func TestServerDownThenUp(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, clock := open(t, srv, Config{})
	srv.Stop()
	clock.onSleep = func(n int) {
		if n == 2 { // back after the second failed attempt
			srv.Start()
		}
	}
	require.NoError(t, s.Send(ctxT(t), simple("ana@customer.example")))
	assert.Len(t, srv.Messages(), 1)
	assert.Len(t, clock.recorded(), 2, "delivered at the third attempt")
}

func TestServerDownIsTemporary(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, clock := open(t, srv, Config{Attempts: 2})
	srv.Stop()
	err := s.Send(ctxT(t), simple("ana@customer.example"))
	require.Error(t, err)
	assert.True(t, Temporary(err), "%v", err)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err))
	assert.Len(t, clock.recorded(), 1)
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, clock := open(t, srv, Config{Attempts: 10})
	srv.Refuse(10, 451)
	ctx, cancel := context.WithCancel(ctxT(t))
	clock.onSleep = func(int) { cancel() }
	err := s.Send(ctx, simple("ana@customer.example"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "451", "the last failure")
	assert.Equal(t, 1, srv.Refused(), "no attempt after the context ended")
}

func TestHeaderInjectionRefused(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s, _ := open(t, srv, Config{})
	for _, tc := range []struct {
		field string
		edit  func(*Message)
	}{
		{"subject", func(m *Message) { m.Subject = "Hello\r\nBcc: victim@example.com" }},
		{"subject", func(m *Message) { m.Subject = "Hello\nX-Evil: 1" }},
		{"to", func(m *Message) { m.To = "ana@customer.example\r\nBcc: victim@example.com" }},
		{"to", func(m *Message) { m.To = "Ana\r\nBcc: victim@example.com <ana@customer.example>" }},
		{"to", func(m *Message) { m.To = "ana@customer.example, victim@example.com" }},
		{"to", func(m *Message) { m.To = "not an address" }},
		{"reply_to", func(m *Message) { m.ReplyTo = "bob@seller.example\nBcc: victim@example.com" }},
		{"message_id", func(m *Message) { m.MessageID = "a@b\r\nBcc: victim@example.com" }},
		{"message_id", func(m *Message) { m.References = []string{"a@b>\r\nBcc: <victim@example.com"} }},
		{"message_id", func(m *Message) { m.InReplyTo = "a@b> <c@d" }},
		{"unsubscribe", func(m *Message) { m.Unsubscribe = "https://x.example/u\r\nBcc: victim@example.com" }},
		{"unsubscribe", func(m *Message) { m.Unsubscribe = "mailto:u@x.example" }},
		{"text", func(m *Message) { m.Text = "" }},
	} {
		m := simple("ana@customer.example")
		tc.edit(&m)
		err := s.Send(ctxT(t), m)
		var e *dealroom.Error
		if assert.ErrorAs(t, err, &e, "%+v", m) {
			assert.Equal(t, dealroom.EINVALID, e.Code)
			assert.Equal(t, tc.field, e.Field, "%+v", m)
		}
		assert.False(t, Temporary(err))
	}
	assert.Empty(t, srv.Messages(), "nothing was sent")
}

func TestRateBound(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})

	// One after the other: every message after the first waits 1/Rate.
	s, clock := open(t, srv, Config{Rate: 2})
	for range 5 {
		require.NoError(t, s.Send(ctxT(t), simple("ana@customer.example")))
	}
	assert.Len(t, srv.Messages(), 5)
	assert.Equal(t, []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}, clock.recorded())

	// At once, with the clock stopped: they share one limiter, so the
	// waits they were given are 0, 1/Rate, 2/Rate, ... one each.
	s, clock = open(t, srv, Config{Rate: 4})
	clock.frozen = true
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { assert.NoError(t, s.Send(ctxT(t), simple("ana@customer.example"))) })
	}
	wg.Wait()
	waits := clock.recorded()
	slices.Sort(waits)
	assert.Equal(t, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond, time.Second}, waits)
	assert.Len(t, srv.Messages(), 10)
}

func TestOpen(t *testing.T) {
	s, err := Open(Config{})
	assert.NoError(t, err)
	assert.Nil(t, s, "no URL: no sender")

	for _, tc := range []struct{ url, from, field string }{
		{"http://u:hunter2@mail.example.com", from, "url"},
		{"smtp://u:hunter2@", from, "url"},
		{"smtp://u:hunter2@mail.example.com:99999", from, "url"},
		{"smtp://u:hunter2@mail.example.com/path", from, "url"},
		{"smtp://u:hunter2@mail.example.com?tls=sometimes", from, "url"},
		{"smtps://u:hunter2@mail.example.com?tls=required", from, "url"},
		{"smtp://:hunter2@mail.example.com", from, "url"},
		{"smtp://u:hunter2@mail.example.com:%zz", from, "url"},
		{"smtp://u:hunter2@mail.example.com", "", "from"},
		{"smtp://u:hunter2@mail.example.com", "not an address", "from"},
		{"smtp://u:hunter2@mail.example.com", "a@example.com\r\nBcc: b@example.com", "from"},
	} {
		_, err := Open(Config{URL: tc.url, From: tc.from})
		var e *dealroom.Error
		if assert.ErrorAs(t, err, &e, tc.url) {
			assert.Equal(t, tc.field, e.Field, tc.url)
		}
		assert.NotContains(t, fmt.Sprint(err), "hunter2", "the password is never in an error")
	}

	for _, u := range []string{"smtp://mail.example.com", "smtp://u:p@mail.example.com:25?tls=required", "smtps://mail.example.com", "smtp://mail.example.com?tls=opportunistic"} {
		s, err := Open(Config{URL: u, From: from})
		assert.NoError(t, err, u)
		assert.NotNil(t, s, u)
	}
}

func TestTemporary(t *testing.T) {
	_, refused := net.Dial("tcp", "127.0.0.1:1")
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{refused, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{dealroom.Invalid("to", "bad"), false},
		{fmt.Errorf("mail: %w", dealroom.Unavailable(refused)), true},
	} {
		assert.Equal(t, tc.want, Temporary(tc.err), "%v", tc.err)
	}
}
