package main

import (
	"errors"
	"net"

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
	srv, err := replymail.New(replymail.Config{Domain: cfg.ReplyDomain, Addresses: n, Service: svc, Log: a.Log})
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
	a.Log.Info("taking replies by email", "addr", l.Addr().String(), "reply_domain", cfg.ReplyDomain)
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
