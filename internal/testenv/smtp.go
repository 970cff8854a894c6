package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPTLS is how an [SMTPServer] offers TLS.
type SMTPTLS int

const (
	// SMTPPlain offers no TLS (and so no AUTH: credentials never travel in
	// the clear).
	SMTPPlain SMTPTLS = iota
	// SMTPStartTLS offers STARTTLS on a plain connection.
	SMTPStartTLS
	// SMTPImplicitTLS speaks TLS from the first byte (smtps).
	SMTPImplicitTLS
)

// SMTPOptions configure an [SMTPServer].
type SMTPOptions struct {
	TLS SMTPTLS
	// User and Password, when set, make the server offer AUTH PLAIN (once
	// the connection is encrypted) and refuse MAIL before it.
	User, Password string
}

// SMTPServer is a real SMTP server, github.com/emersion/go-smtp, running in
// the test's process on a free port of 127.0.0.1 and stopped by the test's
// cleanup ([StartSMTP]), or in a process that serves it to tests that are
// not Go tests ([ListenSMTP]). It keeps every message it accepts ([SMTPServer.Messages]). With
// TLS it has a self-signed certificate made at start, for 127.0.0.1 and
// localhost; clients trust it with [SMTPServer.RootCAs].
//
// Fault tests can make it refuse the next messages ([SMTPServer.Refuse])
// or stop listening and come back on the same port ([SMTPServer.Stop],
// [SMTPServer.Start]). Its methods may be called from several goroutines,
// except Start, which reports failures with tb.Fatalf.
type SMTPServer struct {
	tb    testing.TB // nil for a server of ListenSMTP
	opts  SMTPOptions
	addr  string      // host:port
	tls   *tls.Config // nil with SMTPPlain
	roots *x509.CertPool
	pem   []byte

	mu       sync.Mutex
	srv      *smtp.Server // nil while stopped
	listener net.Listener
	done     chan struct{}
	messages []ReceivedMail
	refuse   []int // the codes with which to refuse the next messages
	refused  int
}

// ReceivedMail is a message an [SMTPServer] accepted, as sent and as read
// back with net/mail and mime/multipart.
type ReceivedMail struct {
	// The envelope.
	From string
	To   []string
	// User is the authenticated user ("" without AUTH); TLS tells whether
	// the message came over an encrypted connection.
	User string
	TLS  bool
	// Raw is the message as received (CRLF line ends).
	Raw []byte
	// Header is the message's header; Subject is its Subject decoded
	// (RFC 2047).
	Header  mail.Header
	Subject string
	// ContentType is the message's media type, like "multipart/alternative".
	ContentType string
	// Text and HTML are the decoded text/plain and text/html parts (of a
	// message of one part, without the line break that ends the data).
	Text, HTML string
	// ParseErr says why the message could not be read back; the other
	// fields then hold what could.
	ParseErr error
}

// StartSMTP starts an SMTP server for tb alone, stopped in tb's cleanup.
func StartSMTP(tb testing.TB, opts SMTPOptions) *SMTPServer {
	tb.Helper()
	s, err := ListenSMTP("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	s.tb = tb
	tb.Cleanup(s.Stop)
	return s
}

// ListenSMTP starts an SMTP server on addr (a free port with
// "127.0.0.1:0"), for a process that serves one to others (the browser
// tests' cmd/smtpsink); Stop stops it. Such a server has no test to fail:
// its Start panics if the port cannot be had again.
func ListenSMTP(addr string, opts SMTPOptions) (*SMTPServer, error) {
	s := &SMTPServer{opts: opts}
	if opts.TLS != SMTPPlain {
		cert, roots, err := selfSigned()
		if err != nil {
			return nil, fmt.Errorf("making the SMTP server's certificate: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.roots = roots
		s.pem = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("SMTP server: %w", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	return s, nil
}

// Addr returns the server's host:port, the same across restarts.
func (s *SMTPServer) Addr() string { return s.addr }

// URL returns the URL of the server with its user and password, the way
// Dealroom's DEALROOM_SMTP_URL names one: smtps:// with implicit TLS,
// smtp:// otherwise.
func (s *SMTPServer) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.opts.TLS == SMTPImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opts.User != "" {
		u.User = url.UserPassword(s.opts.User, s.opts.Password)
	}
	return u.String()
}

// RootCAs returns a pool holding the server's certificate (nil without
// TLS), for the clients' tls.Config.RootCAs.
func (s *SMTPServer) RootCAs() *x509.CertPool { return s.roots }

// CertPEM returns the server's certificate in PEM (nil without TLS), for
// clients configured with a CA file.
func (s *SMTPServer) CertPEM() []byte { return s.pem }

// Messages returns the messages accepted so far, oldest first. A message
// is there before the server answers the end of its data, so a client
// that was told it was accepted finds it at once.
func (s *SMTPServer) Messages() []ReceivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ReceivedMail(nil), s.messages...)
}

// Refuse makes the server refuse the next n messages, at the end of their
// data, with code: a 4xx code (like 451) is a temporary failure the client
// should retry, a 5xx code (like 550) a permanent one.
func (s *SMTPServer) Refuse(n, code int) {
	if code < 400 || code > 599 {
		panic("testenv: Refuse needs a 4xx or 5xx code")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ; n > 0; n-- {
		s.refuse = append(s.refuse, code)
	}
}

// Refused returns how many messages the server has refused.
func (s *SMTPServer) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Stop closes the listener and every connection, and waits until the
// server has stopped serving: clients are refused until Start. Stop on a
// stopped server does nothing.
func (s *SMTPServer) Stop() {
	s.mu.Lock()
	srv, l, done := s.srv, s.listener, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		// The listener too: Serve may not have registered it with the
		// server yet, and then Close would not close it.
		l.Close()
		srv.Close()
		<-done
	}
}

// Start listens again on the same port. It fails the test if the port
// cannot be had within 10 seconds. Start on a running server does nothing.
func (s *SMTPServer) Start() {
	if s.tb != nil {
		s.tb.Helper()
	}
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Listen("tcp", s.Addr())
		if err == nil {
			s.serve(l)
			return
		}
		if time.Now().After(deadline) {
			if s.tb == nil {
				panic(fmt.Sprintf("testenv: restarting the SMTP server on %s: %v", s.Addr(), err))
			}
			s.tb.Fatalf("testenv: restarting the SMTP server on %s: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve starts a server on l.
func (s *SMTPServer) serve(l net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = s.tls
	if s.opts.TLS == SMTPImplicitTLS {
		l = tls.NewListener(l, s.tls)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.listener, s.done = srv, l, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
}

// smtpSession is one client connection's transaction.
type smtpSession struct {
	srv  *SMTPServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *smtpSession) AuthMechanisms() []string {
	if ss.srv.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.srv.opts.User == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != ss.srv.opts.User || pass != ss.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.opts.User != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refuse) > 0 {
		code := s.refuse[0]
		s.refuse = s.refuse[1:]
		s.refused++
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: "refused by the test"}
	}
	_, isTLS := ss.conn.TLSConnectionState()
	m := ReceivedMail{From: ss.from, To: append([]string(nil), ss.to...), User: ss.user, TLS: isTLS, Raw: raw}
	m.ParseErr = m.parse()
	s.messages = append(s.messages, m)
	return nil
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error { return nil }

// parse reads m.Raw back into the header and the text and HTML parts.
func (m *ReceivedMail) parse() error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	contentType := msg.Header.Get("Content-Type")
	if contentType == "" {
		contentType = "text/plain" // RFC 2045's default
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type: %w", err)
	}
	m.ContentType = mediaType
	if !strings.HasPrefix(mediaType, "multipart/") {
		if err := m.keepPart(mediaType, msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
			return err
		}
		// The line break that ends the data is not the text's: clients
		// end the data with one whether the text has one or not.
		m.Text = strings.TrimSuffix(m.Text, "\r\n")
		m.HTML = strings.TrimSuffix(m.HTML, "\r\n")
		return nil
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // undoes quoted-printable itself
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		partType, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return fmt.Errorf("part's content type: %w", err)
		}
		if err := m.keepPart(partType, p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
			return err
		}
	}
}

// keepPart decodes a text/plain or text/html body into m.
func (m *ReceivedMail) keepPart(mediaType, encoding string, body io.Reader) error {
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s part: %w", mediaType, err)
	}
	switch mediaType {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, valid for a
// day, and a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dealroom testenv SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, roots, nil
}
