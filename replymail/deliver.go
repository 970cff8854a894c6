package replymail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
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

// reply is what a received message says, read once for all its
// recipients.
type reply struct {
	auto bool   // an automatic answer, or a bounce
	from string // the one address of its From header ("": none, or several)
	// key is the Message-ID, or a hash of the whole message without one.
	key string
	// body is the text to post; err, when set, why there is none.
	body string
	err  error
}

// readReply reads a message from r, holding only its header and its text
// parts in memory. auto is true for a message with an empty return path.
// The error is go-smtp's when the message is too large or a line too
// long, and tryLater when it cannot be read from the connection.
func readReply(r io.Reader, auto bool) (reply, error) {
	h := sha256.New()
	tee := io.TeeReader(r, h)
	var rp reply
	msg, err := mail.ReadMessage(tee)
	if err == nil {
		rp = parseReply(msg, auto)
	}
	// The rest is read, so that the message's size and lines are checked
	// and the hash covers it all.
	if _, derr := io.Copy(io.Discard, tee); derr != nil {
		err = derr
	}
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		return reply{}, err
	case errors.Is(err, smtp.ErrTooLongLine):
		return reply{}, &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "A line of the message is too long"}
	case err != nil && msg == nil:
		return reply{}, refuse(badContent, "The message cannot be read")
	case err != nil:
		return reply{}, tryLater
	}
	if rp.key == "" {
		rp.key = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	return rp, nil
}

// parseReply reads msg's header and text.
func parseReply(msg *mail.Message, auto bool) reply {
	rp := reply{auto: auto || automatic(msg.Header), key: strings.TrimSpace(msg.Header.Get("Message-Id"))}
	if from, err := msg.Header.AddressList("From"); err == nil && len(from) == 1 {
		rp.from = from[0].Address
	}
	text, err := messageText(msg)
	var u unreadable
	switch {
	case errors.As(err, &u):
		rp.err = refuse(badContent, printable(u.msg))
	case errors.Is(err, errNoText):
		rp.err = refuse(badContent, "The message has no text to post")
	case err != nil:
		rp.err = refuse(badContent, "The message cannot be read")
	default:
		if rp.body = stripQuoted(text); rp.body == "" {
			rp.err = refuse(badContent, "The reply is empty once the quoted message is removed")
		}
	}
	return rp
}

// deliver posts rp into the thread to leads to, or says why not.
func (s *Server) deliver(rp reply, to notify.ReplyTo) error {
	log := s.cfg.Log.With("room", to.Room, "thread", to.Thread, "user", to.User)
	if rp.auto {
		log.Info("an automatic answer to a notification was dropped")
		return nil
	}
	if rp.from == "" {
		return refuse(notPermitted, "The From header must name one address")
	}
	if to.Email == "" || !strings.EqualFold(rp.from, to.Email) {
		log.Warn("a reply by email came from another address than its person's: refused")
		return refuse(notPermitted, "This reply address is not for "+printable(rp.from)+": reply from the address the notification was sent to")
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
	if rp.err != nil {
		return rp.err
	}
	a := dealroom.Actor{ID: to.User, Name: to.Member.Name, Email: to.Email, Kind: to.Member.Kind}
	d := room.MessageDraft{Body: rp.body, ParentID: to.Thread}
	if a.Kind != dealroom.Staff {
		d.Visibility = dealroom.Shared // a customer's reply is never internal
	}
	res, err := s.cfg.Service.PostMessage(ctx, a, to.Room, d, idempotencyKey(rp.key, to.Thread))
	if err != nil {
		return s.refusal(log, err)
	}
	log.Info("a reply by email was posted", "message", res.ID, "replayed", res.Replayed)
	return nil
}

// idempotencyKey is the key of a reply's posting: the same message
// delivered twice into one thread is posted once.
func idempotencyKey(messageKey, thread string) string {
	h := sha256.Sum256([]byte(messageKey + "\x00" + thread))
	return "email-" + hex.EncodeToString(h[:20])
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
