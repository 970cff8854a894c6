package mail

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"golang.org/x/time/rate"

	"dealroom"
)

var _ Sender = (*SMTP)(nil)

// SMTP sends messages through one SMTP server, a connection per attempt.
// It is safe for concurrent use.
type SMTP struct {
	client   *gomail.Client // holds the settings; each attempt has its own connection
	from     *netmail.Address
	domain   string // of From, for Message-IDs
	tls      tlsMode
	limiter  *rate.Limiter
	attempts int
	backoff  time.Duration

	// The clock, the waits and the jitter; tests replace them to count
	// instead of waiting.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(max time.Duration) time.Duration
}

// tlsMode is how a connection gets TLS.
type tlsMode int

const (
	startTLSOpportunistic tlsMode = iota // STARTTLS when offered, else plain
	startTLSRequired                     // STARTTLS or fail
	implicitTLS                          // smtps: TLS from the first byte
)

// newSMTP checks cfg and makes the client; it connects to nothing.
func newSMTP(cfg Config) (*SMTP, error) {
	host, port, mode, user, pass, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.From == "" {
		return nil, dealroom.Invalid("from", "a sender address is needed to send mail")
	}
	from, err := parseAddress(cfg.From)
	if err != nil {
		return nil, dealroom.Invalid("from", "%q is not an email address: %v", cfg.From, err)
	}
	if !(cfg.Rate >= 0) || cfg.Attempts < 0 || cfg.Backoff < 0 || cfg.Timeout < 0 {
		return nil, dealroom.Invalid("", "the rate, attempts, backoff and timeout must not be negative")
	}
	s := &SMTP{
		from:     from,
		domain:   from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		tls:      mode,
		limiter:  rate.NewLimiter(rate.Limit(orDefault(cfg.Rate, DefaultRate)), 1),
		attempts: orDefault(cfg.Attempts, DefaultAttempts),
		backoff:  orDefault(cfg.Backoff, DefaultBackoff),
		now:      time.Now,
		sleep:    sleep,
		jitter:   func(max time.Duration) time.Duration { return rand.N(max + 1) },
	}
	tlsConfig := &tls.Config{ServerName: host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	// The policy decides STARTTLS. Opportunistic is the default because
	// many relays inside a company network, and the mail catchers used in
	// development, offer no STARTTLS, while credentials never travel in the
	// clear anyway (see below); an attacker on the path can strip an
	// offered STARTTLS, which ?tls=required prevents. With smtps the dialer
	// below makes the TLS connection itself; a server speaking TLS offers
	// no STARTTLS, and the library sees the connection is encrypted.
	policy := gomail.TLSOpportunistic
	if mode == startTLSRequired {
		policy = gomail.TLSMandatory
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithTimeout(orDefault(cfg.Timeout, DefaultTimeout)),
		gomail.WithDialContextFunc(s.dialer(mode == implicitTLS, tlsConfig)),
	}
	if user != "" {
		// Auto-discovery picks the strongest mechanism the server offers,
		// and PLAIN or LOGIN only on an encrypted connection.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	if s.client, err = gomail.NewClient(host, opts...); err != nil {
		return nil, dealroom.Invalid("url", "%v", err)
	}
	return s, nil
}

// parseURL reads smtp:// and smtps:// URLs. Its errors never quote the
// URL, which may hold a password.
func parseURL(raw string) (host string, port int, mode tlsMode, user, pass string, err error) {
	u, perr := url.Parse(raw)
	if perr != nil {
		return "", 0, 0, "", "", dealroom.Invalid("url", "not a URL like smtp://user:pass@host:587 or smtps://host:465")
	}
	switch u.Scheme {
	case "smtp":
		port, mode = 587, startTLSOpportunistic
	case "smtps":
		port, mode = 465, implicitTLS
	default:
		return "", 0, 0, "", "", dealroom.Invalid("url", "the scheme must be smtp or smtps, not %q", u.Scheme)
	}
	host = u.Hostname()
	if host == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return "", 0, 0, "", "", dealroom.Invalid("url", "must be %s://[user:pass@]host[:port], with nothing after the port but ?tls=required", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", 0, 0, "", "", dealroom.Invalid("url", "the port must be a number from 1 to 65535")
		}
	}
	q := u.Query()
	for k, v := range q {
		switch {
		case k == "tls" && len(v) == 1 && v[0] == "required" && mode != implicitTLS:
			mode = startTLSRequired
		case k == "tls" && len(v) == 1 && v[0] == "opportunistic" && mode != implicitTLS:
		default:
			return "", 0, 0, "", "", dealroom.Invalid("url", "unknown option %q: only smtp:// takes one, tls=required or tls=opportunistic", k)
		}
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		if user == "" {
			return "", 0, 0, "", "", dealroom.Invalid("url", "a password needs a user name")
		}
	}
	return host, port, mode, user, pass, nil
}

// connKey is the context key under which an attempt asks the dialer for
// its connection, to close it whatever the library did with it.
type connKey struct{}

// dialer returns the library's dial function: TCP, and TLS at once for
// smtps. It hands the connection to the attempt (see connKey): the library
// does not close a connection whose greeting, STARTTLS or AUTH failed.
func (s *SMTP) dialer(implicit bool, cfg *tls.Config) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		var c net.Conn
		var err error
		if implicit {
			c, err = (&tls.Dialer{NetDialer: &d, Config: cfg}).DialContext(ctx, network, addr)
		} else {
			c, err = d.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		if h, ok := ctx.Value(connKey{}).(*heldConn); ok {
			h.set(c)
		}
		return c, nil
	}
}

// heldConn is the connection of one attempt.
type heldConn struct {
	mu sync.Mutex
	c  net.Conn
}

func (h *heldConn) set(c net.Conn) {
	h.mu.Lock()
	h.c = c
	h.mu.Unlock()
}

func (h *heldConn) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		h.c.Close()
	}
}

// Send implements Sender.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	h, err := s.headers(m)
	if err != nil {
		return err
	}
	var last error
	for i := 0; i < s.attempts; i++ {
		if i > 0 && s.sleep(ctx, s.retryWait(i)) != nil {
			break
		}
		last = s.attempt(ctx, m, h)
		if last == nil {
			return nil
		}
		if !Temporary(last) {
			return fmt.Errorf("mail: sending to %s: %w", h.to.Address, last)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return dealroom.Unavailable(fmt.Errorf("mail: sending to %s: %w", h.to.Address, last))
}

// retryWait is the wait before attempt i (1 for the first retry):
// Backoff·2^(i-1), at most maxBackoff, less up to half of it at random.
func (s *SMTP) retryWait(i int) time.Duration {
	d := s.backoff
	for ; i > 1 && d < maxBackoff; i-- {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d - s.jitter(d/2)
}

// attempt waits its turn, then sends m on a connection of its own.
func (s *SMTP) attempt(ctx context.Context, m Message, h header) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	msg := s.build(m, h)
	held := &heldConn{}
	defer held.close()
	c, err := s.client.DialToSMTPClientWithContext(context.WithValue(ctx, connKey{}, held))
	if err != nil {
		return err
	}
	defer s.client.CloseWithSMTPClient(c)
	err = s.client.SendWithSMTPClient(c, msg)
	if err != nil && msg.IsDelivered() {
		return nil // the server took it; only the RSET after it failed
	}
	return err
}

// wait takes a turn from the limiter shared by all sends, waiting for it.
func (s *SMTP) wait(ctx context.Context) error {
	now := s.now()
	r := s.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		if err := s.sleep(ctx, d); err != nil {
			r.CancelAt(s.now())
			return err
		}
	}
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// header is a message's checked header values.
type header struct {
	to, replyTo *netmail.Address
	id          string
}

// headers checks m's header fields and parses its addresses.
func (s *SMTP) headers(m Message) (header, error) {
	var h header
	for _, f := range []struct{ name, value string }{
		{"to", m.To}, {"subject", m.Subject}, {"reply_to", m.ReplyTo}, {"message_id", m.MessageID},
		{"in_reply_to", m.InReplyTo}, {"unsubscribe", m.Unsubscribe},
	} {
		if strings.ContainsAny(f.value, "\r\n\x00") {
			return h, dealroom.Invalid(f.name, "must not contain line breaks")
		}
	}
	var err error
	switch {
	case m.To == "":
		return h, dealroom.Invalid("to", "a recipient is needed")
	case m.Subject == "":
		return h, dealroom.Invalid("subject", "a subject is needed")
	case m.Text == "":
		return h, dealroom.Invalid("text", "a plain-text body is needed")
	}
	if h.to, err = parseAddress(m.To); err != nil {
		return h, dealroom.Invalid("to", "%q is not an email address", m.To)
	}
	if m.ReplyTo != "" {
		if h.replyTo, err = parseAddress(m.ReplyTo); err != nil {
			return h, dealroom.Invalid("reply_to", "%q is not an email address", m.ReplyTo)
		}
	}
	if m.Unsubscribe != "" {
		u, err := url.Parse(m.Unsubscribe)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(m.Unsubscribe, " <>,") {
			return h, dealroom.Invalid("unsubscribe", "must be an http or https URL")
		}
	}
	for _, id := range append([]string{m.MessageID, m.InReplyTo}, m.References...) {
		if id != "" && !validMessageID(id) {
			return h, dealroom.Invalid("message_id", "%q is not a message id like local@domain (without angle brackets)", id)
		}
	}
	h.id = m.MessageID
	if h.id == "" {
		b := make([]byte, 16)
		_, _ = crand.Read(b)
		h.id = hex.EncodeToString(b) + "@" + s.domain
	}
	return h, nil
}

// build writes m as the library's message.
func (s *SMTP) build(m Message, h header) *gomail.Msg {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	msg.ToMailAddress(h.to)
	if h.replyTo != nil {
		msg.ReplyToMailAddress(h.replyTo)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(h.id)
	msg.SetDateWithValue(s.now())
	if m.InReplyTo != "" {
		msg.SetGenHeaderPreformatted(gomail.HeaderInReplyTo, "<"+m.InReplyTo+">")
	}
	if len(m.References) > 0 {
		// One id per line (folded), so that a long thread does not make a
		// line longer than SMTP allows.
		msg.SetGenHeaderPreformatted(gomail.HeaderReferences, "<"+strings.Join(m.References, ">\r\n <")+">")
	}
	if m.Unsubscribe != "" {
		msg.SetListUnsubscribe(m.Unsubscribe)
		msg.SetListUnsubscribePost()
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg
}

// parseAddress parses one address, refusing line breaks.
func parseAddress(s string) (*netmail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("line break in the address")
	}
	return netmail.ParseAddress(s)
}

// validMessageID reports whether id can go between angle brackets as a
// message id: local@domain, printable ASCII, no spaces or brackets.
func validMessageID(id string) bool {
	at := strings.IndexByte(id, '@')
	if at < 1 || at == len(id)-1 || len(id) > 250 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
