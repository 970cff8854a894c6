package mail

import (
	"context"
	"crypto/x509"
	"time"
)

// Sender sends email.
type Sender interface {
	// Send hands m to the mail server, retrying temporary failures while
	// ctx allows. It returns nil once the server has accepted the message.
	// A message that cannot be sent as given is an EINVALID error naming
	// its field (nothing is sent); a temporary failure that outlived the
	// retries is EUNAVAILABLE (Temporary reports true for it); any other
	// error is permanent and carries no code.
	Send(ctx context.Context, m Message) error
}

// Message is one email to one person. Every field that becomes a header is
// refused if it holds a CR or LF.
type Message struct {
	// To is the recipient, like "ana@example.com" or
	// "Ana Lima <ana@example.com>". Required.
	To string
	// Subject is required.
	Subject string
	// Text is the plain-text body. Required: every message can be read
	// as text.
	Text string
	// HTML, when set, is the same content as HTML. Both go out as
	// multipart/alternative and the reader's mail client shows one.
	HTML string
	// ReplyTo, when set, is where answers go instead of the sender's
	// address.
	ReplyTo string
	// MessageID identifies the message, without angle brackets, like
	// "n42.r7@dealroom.example.com". Empty: a random one at the From
	// address's domain. Retries of one Send always carry the same one.
	MessageID string
	// InReplyTo and References thread the message under earlier ones
	// (their message ids, without angle brackets), so that notifications
	// about one room are shown as one conversation.
	InReplyTo  string
	References []string
	// Unsubscribe, when set, is the http(s) URL that unsubscribes the
	// recipient with one POST (RFC 8058). It goes out as List-Unsubscribe,
	// with List-Unsubscribe-Post: List-Unsubscribe=One-Click, and mail
	// clients show an unsubscribe button for it. Mailbox providers honour
	// it for https URLs in messages their domain's DKIM signature covers
	// (signing is the mail server's work, not Dealroom's).
	Unsubscribe string
}

// Defaults of the zero values of Config.
const (
	DefaultRate     = 5
	DefaultAttempts = 4
	DefaultBackoff  = time.Second
	DefaultTimeout  = 30 * time.Second
	// maxBackoff caps the wait between two attempts.
	maxBackoff = time.Minute
)

// Config says which server to send through and how.
type Config struct {
	// URL is the mail server: smtp://[user:pass@]host[:port] (port 587 by
	// default; STARTTLS when the server offers it, or required with
	// ?tls=required) or smtps://[user:pass@]host[:port] (port 465 by
	// default; TLS from the start). Empty: no mail (Open returns nil).
	URL string
	// From is the sender's address, like "Dealroom <rooms@example.com>".
	// Required with a URL.
	From string
	// Rate is how many messages per second all sends together may start,
	// evenly spaced. Zero: DefaultRate.
	Rate float64
	// Attempts is how many times Send tries a message, the first included,
	// when it fails temporarily. Zero: DefaultAttempts.
	Attempts int
	// Backoff is the wait before the first retry; each next one waits
	// twice as long (at most a minute), less up to half of it at random
	// so that senders that failed together do not retry together. Zero:
	// DefaultBackoff.
	Backoff time.Duration
	// Timeout bounds the connection's set-up and each SMTP command. Zero:
	// DefaultTimeout.
	Timeout time.Duration
	// RootCAs are the certificate authorities the server's certificate
	// must chain to. Nil: the system's. For a company CA, and for tests.
	RootCAs *x509.CertPool
}

// Open returns the sender cfg describes, or nil (and no error) when cfg
// has no URL: the server then runs without email, and callers offer what
// they would have sent some other way. Open only checks the configuration
// (a bad URL or From is an EINVALID error with Field "url" or "from", and
// never repeats the URL's password); it connects to nothing.
func Open(cfg Config) (Sender, error) {
	if cfg.URL == "" {
		return nil, nil
	}
	s, err := newSMTP(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
