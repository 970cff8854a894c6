package hub

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"dealroom/broker"
	"dealroom/room"
)

// ErrSignedOut ends a session whose sign-in was ended: the invite its
// token came from was revoked. The transport closes the connection so
// that the device signs out (it has no way to a fresh token).
var ErrSignedOut = errors.New("this sign-in was ended")

// sessionsChannel is the broker channel of news about sessions rather than
// rooms. No room id has this form.
const sessionsChannel = "~sessions"

// signOut names the sessions to end, on every instance.
type signOut struct {
	// Invite: the sessions whose token came from this invite.
	Invite string `json:"invite"`
}

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
	so := signOut{Invite: invite}
	h.endSessions(so)
	data, err := json.Marshal(so)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, time.Second)
	defer cancel()
	if err := h.broker.Publish(ctx, broker.Message{Room: sessionsChannel, Kind: broker.Control, Origin: h.cfg.Instance, Data: data}); err != nil {
		h.log.Warn("cannot tell the other instances of an ended sign-in", "invite", invite, "err", err)
	}
}

// receiveControl handles news about sessions from another instance.
func (h *Hub) receiveControl(m broker.Message) {
	if m.Origin == h.cfg.Instance || m.Room != sessionsChannel {
		return
	}
	var so signOut
	if err := json.Unmarshal(m.Data, &so); err != nil || so.Invite == "" {
		h.log.Warn("ignoring a malformed sessions message", "origin", m.Origin)
		return
	}
	h.endSessions(so)
}

// endSessions ends this instance's sessions that so names.
func (h *Hub) endSessions(so signOut) {
	for _, s := range h.allSessions() {
		if s.actor.Invite != "" && s.actor.Invite == so.Invite {
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
