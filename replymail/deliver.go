package replymail

import (
	"bytes"
	"context"
	"errors"
	"net/mail"
	"strings"
	"unicode"

	"github.com/emersion/go-smtp"

	"dealroom"
	"dealroom/notify"
	"dealroom/room"
)

// refuse is a permanent refusal with a text for the person who wrote.
func refuse(enhanced smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: enhanced, Message: msg}
}

var (
	notPermitted = smtp.EnhancedCode{5, 7, 1}
	badContent   = smtp.EnhancedCode{5, 6, 0}
)

// deliver posts the message raw into the thread to leads to, or says why
// not. auto is true for a message with an empty return path.
func (s *Server) deliver(raw []byte, to notify.ReplyTo, auto bool) error {
	log := s.cfg.Log.With("room", to.Room, "thread", to.Thread, "user", to.User)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return refuse(badContent, "The message cannot be read")
	}
	if auto || automatic(msg.Header) {
		log.Info("an automatic answer to a notification was dropped")
		return nil
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 {
		return refuse(notPermitted, "The From header must name one address")
	}
	if to.Email == "" || !strings.EqualFold(from[0].Address, to.Email) {
		log.Warn("a reply by email came from another address than its person's: refused")
		return refuse(notPermitted, "This reply address is not for "+printable(from[0].Address)+": reply from the address the notification was sent to")
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.PostTimeout)
	defer cancel()
	if to.Member.Kind != dealroom.Staff {
		revoked, err := inviteRevoked(ctx, s.cfg.Service.Store, to.Room, to.User)
		if err != nil {
			log.Warn("a reply by email could not be checked", "err", err)
			return tryLater
		}
		if revoked {
			log.Info("a reply by email of a customer whose invite was revoked: refused")
			return refuse(notPermitted, "You can no longer post in this room")
		}
	}
	text, err := messageText(msg)
	var u unreadable
	switch {
	case errors.As(err, &u):
		return refuse(badContent, printable(u.msg))
	case errors.Is(err, errNoText):
		return refuse(badContent, "The message has no text to post")
	case err != nil:
		return refuse(badContent, "The message cannot be read")
	}
	body := stripQuoted(text)
	if body == "" {
		return refuse(badContent, "The reply is empty once the quoted message is removed")
	}
	a := dealroom.Actor{ID: to.User, Name: to.Member.Name, Email: to.Email, Kind: to.Member.Kind}
	d := room.MessageDraft{Body: body, ParentID: to.Thread}
	if a.Kind != dealroom.Staff {
		d.Visibility = dealroom.Shared // a customer's reply is never internal
	}
	key := idempotencyKey(strings.TrimSpace(msg.Header.Get("Message-Id")), raw, to.Thread)
	res, err := s.cfg.Service.PostMessage(ctx, a, to.Room, d, key)
	if err != nil {
		return s.refusal(log, err)
	}
	log.Info("a reply by email was posted", "message", res.ID, "replayed", res.Replayed)
	return nil
}

// refusal answers a refusal of the room service's: permanent for a fault
// of the reply or of the person's rights, temporary for one of the store.
func (s *Server) refusal(log interface{ Warn(string, ...any) }, err error) error {
	var e *dealroom.Error
	msg := "You cannot post in this thread"
	if errors.As(err, &e) && e.Message != "" {
		msg = e.Message
	}
	switch dealroom.ErrorCode(err) {
	case dealroom.ENOTFOUND, dealroom.EFORBIDDEN, dealroom.EUNAUTH:
		return refuse(notPermitted, printable(msg))
	case dealroom.EINVALID, dealroom.EBADREQUEST:
		return refuse(badContent, printable(msg))
	case dealroom.ECONFLICT:
		return refuse(notPermitted, "Another message with this Message-ID was posted into this thread")
	case dealroom.ETOOLARGE:
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: printable(msg)}
	}
	log.Warn("a reply by email could not be posted", "err", err)
	return tryLater
}

// automatic reports whether a message says it was sent by a program
// (RFC 3834's Auto-Submitted, and the headers of older autoresponders).
func automatic(h mail.Header) bool {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && v != "no" {
		return true
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "junk", "list", "auto_reply":
		return true
	}
	return h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != ""
}

// inviteRevoked reports whether the newest invite of the room that user
// accepted was revoked: revoking it ends that person's sign-ins, and
// their replies by email with them. False for a member who joined
// without an invite.
func inviteRevoked(ctx context.Context, st room.Store, roomID, user string) (bool, error) {
	const page = 200
	var after *room.Invite
	for range 50 {
		invs, err := st.Invites(ctx, roomID, after, page)
		if err != nil {
			return false, err
		}
		for _, inv := range invs {
			if inv.AcceptedBy == user {
				return inv.RevokedAt != nil, nil
			}
		}
		if len(invs) < page {
			break
		}
		after = &invs[len(invs)-1]
	}
	return false, nil
}

// printable makes an SMTP reply's text of s: ASCII on one line.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '“' || r == '”':
			return '"'
		case r == '‘' || r == '’':
			return '\''
		case r > unicode.MaxASCII || unicode.IsControl(r):
			return '?'
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
