package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"dealroom/notify"
	"dealroom/replymail"
	"dealroom/room"
)

// openReplies starts the SMTP server of replies by email on -smtp-listen,
// when it is set: replies to notifications are posted into their threads
// through svc. The server stops before the store closes (closers run last
// first).
func (a *App) openReplies(cfg Config, n *notify.Notifier, svc *room.Service) error {
	if cfg.SMTPListen == "" {
		if cfg.ReplyDomain != "" && n != nil {
			a.Log.Info("notifications carry reply addresses; this instance takes no replies (no DEALROOM_SMTP_LISTEN)", "reply_domain", cfg.ReplyDomain)
		}
		return nil
	}
	if n == nil {
		return errors.New("-smtp-listen: replies by email need email notifications, which are off")
	}
	rc := replymail.Config{Domain: cfg.ReplyDomain, Addresses: n, Service: svc, Log: a.Log}
	if cfg.SMTPTLSCert != "" {
		files := &certFiles{cert: cfg.SMTPTLSCert, key: cfg.SMTPTLSKey}
		if _, err := files.get(nil); err != nil {
			return fmt.Errorf("-smtp-tls-cert / -smtp-tls-key: %w", err)
		}
		rc.TLS = &tls.Config{GetCertificate: files.get, MinVersion: tls.VersionTLS12}
	}
	srv, err := replymail.New(rc)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.SMTPListen)
	if err != nil {
		srv.Close()
		return err
	}
	a.replies = l
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil {
			a.Log.Error("the SMTP server of replies stopped", "err", err)
		}
	}()
	a.closers = append(a.closers, func() error { err := srv.Close(); <-done; return err })
	a.Log.Info("taking replies by email", "addr", l.Addr().String(), "reply_domain", cfg.ReplyDomain, "starttls", rc.TLS != nil)
	return nil
}

// SMTPAddr returns the address of the SMTP server of replies, "" when
// there is none.
func (a *App) SMTPAddr() string {
	if a.replies == nil {
		return ""
	}
	return a.replies.Addr().String()
}

// certFiles is a certificate kept in two PEM files, read again when
// either changes, so that a renewed certificate needs no restart. While
// the new files cannot be read (half written), the one read before stays.
type certFiles struct {
	cert, key string

	mu     sync.Mutex
	mod    time.Time // the later of the files' times when they were read
	loaded *tls.Certificate
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	var mod time.Time
	for _, f := range []string{c.cert, c.key} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(mod) {
			mod = fi.ModTime()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded != nil && !mod.After(c.mod) {
		return c.loaded, nil
	}
	cert, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		if c.loaded != nil {
			return c.loaded, nil
		}
		return nil, err
	}
	c.loaded, c.mod = &cert, mod
	return c.loaded, nil
}
