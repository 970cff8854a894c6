// Package replymail posts replies by email into the room's threads: an
// SMTP server of Dealroom's own (github.com/emersion/go-smtp) that takes
// mail for the reply addresses notifications carry (notify.ReplyAddress),
// and posts the text of each into the thread its address names, as the
// person it was made for, through room.Service.
//
// With a certificate it offers STARTTLS; senders that require TLS need it.
//
// What it refuses, and when:
//   - at RCPT TO (550): an address that is not a reply address of this
//     server's at its domain, or was changed, or whose person is no longer
//     a member of the room; more recipients than MaxRecipients (452);
//   - at the end of DATA (550): a From header that is not the person's
//     known address (a forwarded email answered by someone else), a
//     customer whose invite to the room was revoked, anything the room
//     refuses (read access only, a thread they may not see, a text too
//     long), a message with no text once the quoted message is removed;
//     a message larger than MaxBytes (552). A fault of the store is 451,
//     so that the sending server tries again.
//
// Automatic replies (Auto-Submitted, Precedence: bulk, an empty return
// path) are taken and dropped, so that an out-of-office answer neither
// lands in the room nor bounces. The same message delivered twice (one
// Message-ID) is posted once: its idempotency key is made of its
// Message-ID and the thread. The From header is not authenticated here:
// the address's key is the credential, and the From check keeps a
// forwarded notification from being answered in its recipient's name.
package replymail

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"dealroom"
	"dealroom/notify"
	"dealroom/room"
)

// Addresses opens reply addresses: notify.Notifier does.
type Addresses interface {
	// OpenReply returns where address leads; ENOTFOUND when it is not a
	// reply address of this server's or its person is not a member.
	OpenReply(ctx context.Context, address string) (notify.ReplyTo, error)
}

// Defaults of Config's zero values.
const (
	DefaultMaxBytes       = 10 << 20
	DefaultMaxRecipients  = 5
	DefaultMaxConnections = 100
	DefaultTimeout        = 5 * time.Minute
	DefaultMaxSession     = 15 * time.Minute
	DefaultPostTimeout    = 30 * time.Second
)

// Config is what a Server needs.
type Config struct {
	// Domain is the domain of reply addresses; the server names itself
	// by it. Required.
	Domain string
	// Addresses opens reply addresses; Service posts the replies. Required.
	Addresses Addresses
	Service   *room.Service
	// MaxBytes is the largest message taken (0: DefaultMaxBytes). A
	// message is read as it arrives: only its header and its first text
	// and HTML parts (at most 1 MiB each) are held in memory.
	MaxBytes int64
	// MaxRecipients is the most reply addresses of one message (0:
	// DefaultMaxRecipients).
	MaxRecipients int
	// MaxConnections is the most connections served at once; one more is
	// answered 421 and closed (0: DefaultMaxConnections).
	MaxConnections int
	// Timeout bounds the wait for each command and for a message's data
	// (0: DefaultTimeout); MaxSession a connection's whole life (0:
	// DefaultMaxSession).
	Timeout    time.Duration
	MaxSession time.Duration
	// PostTimeout bounds the posting of one reply (0: DefaultPostTimeout).
	PostTimeout time.Duration
	// TLS, when set, is offered with STARTTLS (RFC 3207). Nil: plain
	// SMTP only.
	TLS *tls.Config
	Log *slog.Logger
}

// Server is the SMTP server of replies.
type Server struct {
	cfg    Config
	smtp   *smtp.Server
	ctx    context.Context // ends at Close: postings in flight stop
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	closeErr  error
	listeners []net.Listener
}

// New returns a server of cfg; Serve starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Domain == "" || cfg.Addresses == nil || cfg.Service == nil {
		return nil, errors.New("replymail: the domain, the addresses and the service are required")
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, DefaultMaxBytes)
	cfg.MaxRecipients = cmp.Or(cfg.MaxRecipients, DefaultMaxRecipients)
	cfg.MaxConnections = cmp.Or(cfg.MaxConnections, DefaultMaxConnections)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.MaxSession = cmp.Or(cfg.MaxSession, DefaultMaxSession)
	cfg.PostTimeout = cmp.Or(cfg.PostTimeout, DefaultPostTimeout)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.smtp = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s}, nil
	}))
	s.smtp.Domain = cfg.Domain
	s.smtp.MaxMessageBytes = cfg.MaxBytes
	s.smtp.MaxRecipients = cfg.MaxRecipients
	s.smtp.ReadTimeout = cfg.Timeout
	s.smtp.WriteTimeout = cfg.Timeout
	s.smtp.ErrorLog = logAdapter{cfg.Log}
	s.smtp.TLSConfig = cfg.TLS
	return s, nil
}

// Serve serves connections of l until Close, and returns nil then (at
// once when Close came first).
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	// Kept here too: go-smtp closes only the listeners it serves already.
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	err := s.smtp.Serve(&limitListener{Listener: l, slots: make(chan struct{}, s.cfg.MaxConnections), life: s.cfg.MaxSession})
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops listening, closes the connections and stops the postings in
// flight. It is safe to call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	s.cancel()
	// go-smtp's first: a Serve that sees its listener closed then knows
	// the server was closed.
	s.closeErr = s.smtp.Close()
	for _, l := range s.listeners {
		l.Close()
	}
	return s.closeErr
}

// session is one SMTP connection's transaction.
type session struct {
	srv  *Server
	auto bool // an empty return path: a bounce or an automatic answer
	to   []notify.ReplyTo
}

func (ss *session) Reset() { ss.auto, ss.to = false, nil }

func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.auto = from == ""
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ctx, cancel := context.WithTimeout(ss.srv.ctx, ss.srv.cfg.PostTimeout)
	defer cancel()
	r, err := ss.srv.cfg.Addresses.OpenReply(ctx, to)
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such reply address here"}
	}
	if err != nil {
		ss.srv.cfg.Log.Warn("a reply address could not be opened", "err", err)
		return tryLater
	}
	ss.to = append(ss.to, r)
	return nil
}

// tryLater asks the sending server to try again: a fault on this side.
var tryLater = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}

func (ss *session) Data(r io.Reader) error {
	rp, err := readReply(r, ss.auto)
	if err != nil {
		return err
	}
	for _, to := range ss.to {
		if err := ss.srv.deliver(rp, to); err != nil {
			// Replies posted before are posted again as replays when the
			// sending server retries: the idempotency key.
			return err
		}
	}
	return nil
}

// logAdapter writes go-smtp's log lines to the server's log.
type logAdapter struct{ log *slog.Logger }

func (l logAdapter) Printf(format string, v ...any) {
	l.log.Warn("smtp: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l logAdapter) Println(v ...any) { l.log.Warn("smtp: " + strings.TrimSpace(fmt.Sprintln(v...))) }
