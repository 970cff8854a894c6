package hub

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"dealroom/broker"
	"dealroom/room"
)

// ErrSignedOut ends a session whose sign-in was ended: the invite its
// token came from was revoked, or the browser session it was opened with
// was signed out (by its user, everywhere, or by an admin). The transport
// closes the connection so that the device signs out (it has no way to a
// fresh token).
var ErrSignedOut = errors.New("this sign-in was ended")

// sessionsChannel is the broker channel of news about sessions rather than
// rooms. No room id has this form.
const sessionsChannel = "~sessions"

// signOut names the sessions to end, on every instance. Each field names
// some; a message may fill several.
type signOut struct {
	// Invite: the sessions whose token came from this invite.
	Invite string `json:"invite"`
	// SignIns: the sessions opened with these browser sessions (their ids,
	// package session).
	SignIns []string `json:"sign_ins,omitempty"`
	// User: every session of this user, however it signed in.
	User string `json:"user,omitempty"`
}

// empty reports whether so names no session.
func (so signOut) empty() bool { return so.Invite == "" && len(so.SignIns) == 0 && so.User == "" }

// subscribeSessions follows the sessions channel, trying again until it
// is followed or the hub closes.
func (h *Hub) subscribeSessions() {
	defer h.wg.Done()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
		err := h.broker.Subscribe(ctx, sessionsChannel)
		cancel()
		if err == nil || h.ctx.Err() != nil {
			return
		}
		h.log.Warn("cannot follow the sessions channel; trying again", "err", err)
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// signedOut looks at a committed event for a sign-in it ends: an accepted
// invite that is revoked ends the sessions of the tokens it issued, here
// at once and on the other instances through the broker. (Instances that
// follow the room also end them when the event reaches their feed, which
// repairs what the broker loses; the others' sessions are refused at
// their next command or subscription.)
func (h *Hub) signedOut(ev room.Event) {
	invite := revokedInvite(ev)
	if invite == "" {
		return
	}
	h.signOut(signOut{Invite: invite})
}

// EndSignIns disconnects, here and on every other instance, the devices
// connected with the browser sessions signIns (their ids), and with user
// not empty every device of that user. The sessions themselves are ended
// in the store by the caller first, so that a device cannot connect again
// with them. The other instances are told through the broker; one that
// misses the message (the broker lost it) closes such a device at its
// first command once the session was last checked 5 s ago or more
// (ws.Service.Authorize).
func (h *Hub) EndSignIns(signIns []string, user string) {
	so := signOut{SignIns: signIns, User: user}
	if so.empty() {
		return
	}
	h.signOut(so)
}

// signOut ends the sessions so names here, and tells the other instances.
func (h *Hub) signOut(so signOut) {
	h.endSessions(so)
	data, err := json.Marshal(so)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, time.Second)
	defer cancel()
	if err := h.broker.Publish(ctx, broker.Message{Room: sessionsChannel, Kind: broker.Control, Origin: h.cfg.Instance, Data: data}); err != nil {
		h.log.Warn("cannot tell the other instances of an ended sign-in",
			"invite", so.Invite, "sign_ins", len(so.SignIns), "user", so.User, "err", err)
	}
}

// receiveControl handles news about sessions from another instance.
func (h *Hub) receiveControl(m broker.Message) {
	if m.Origin == h.cfg.Instance || m.Room != sessionsChannel {
		return
	}
	var so signOut
	if err := json.Unmarshal(m.Data, &so); err != nil || so.empty() {
		h.log.Warn("ignoring a malformed sessions message", "origin", m.Origin)
		return
	}
	h.endSessions(so)
}

// endSessions ends this instance's sessions that so names.
func (h *Hub) endSessions(so signOut) {
	for _, s := range h.allSessions() {
		if (so.Invite != "" && s.actor.Invite == so.Invite) ||
			(so.User != "" && s.actor.ID == so.User) ||
			(s.signIn != "" && slices.Contains(so.SignIns, s.signIn)) {
			s.end(ErrSignedOut)
		}
	}
}

// revokedInvite returns the id of the accepted invite an invite.revoked
// event revokes, "" for any other event.
func revokedInvite(ev room.Event) string {
	if ev.Type != room.InviteRevoked {
		return ""
	}
	var inv room.Invite
	if json.Unmarshal(ev.Data, &inv) != nil || inv.AcceptedAt == nil {
		return ""
	}
	return inv.ID
}
