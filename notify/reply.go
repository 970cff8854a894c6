package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"dealroom"
	"dealroom/room"
)

// Reply addresses. An email about a thread (a mention in one of its
// messages) says "Reply-To: reply+TOKEN@REPLY_DOMAIN", and the answer,
// received by package replymail, is posted into that thread as the
// person the email was for. The token holds the room's id, the thread's
// first message's id and an HMAC-SHA256 (truncated to 80 bits) of the
// recipient's user id, the room and the thread under a key of its own
// derived from the server's secret. The user id is not written in the
// token: it is the member of the room whose HMAC matches, which keeps
// the token short (68 characters: 16 bytes of each id and 10 of the MAC)
// and says nothing of who it is for. Mail servers may change the case of
// an address's local part, so the token is lower-case base32 and read
// in any case. Like unsubscribe links, reply addresses do not expire: a
// reply to an old email is still a reply; who may post is checked when
// it arrives.

// replyPrefix starts the local part of every reply address.
const replyPrefix = "reply+"

// idBase32 is the alphabet of room ids (package room): a room or message
// id is its prefix, "_" and 16 bytes in it.
var idBase32 = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

const (
	idBytes    = 16
	macBytes   = 10
	tokenSize  = 2*idBytes + macBytes
	tokenChars = (tokenSize*8 + 4) / 5 // 68
)

// replyAddresses makes and opens reply addresses.
type replyAddresses struct {
	key    []byte
	domain string // lower case; "" when replies by email are off
}

func (r replyAddresses) mac(user string, roomID, thread []byte) []byte {
	mac := hmac.New(sha256.New, r.key)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write(roomID)
	mac.Write(thread)
	return mac.Sum(nil)[:macBytes]
}

// address returns the reply address of user for thread in roomID; ""
// when replies are off or an id is not of the form new ids have.
func (r replyAddresses) address(user, roomID, thread string) string {
	rb, ok := idBytesOf("r_", roomID)
	tb, ok2 := idBytesOf("m_", thread)
	if r.domain == "" || user == "" || !ok || !ok2 {
		return ""
	}
	raw := make([]byte, 0, tokenSize)
	raw = append(append(append(raw, rb...), tb...), r.mac(user, rb, tb)...)
	return replyPrefix + idBase32.EncodeToString(raw) + "@" + r.domain
}

// idBytesOf returns the 16 bytes of an id like "r_" + 26 characters.
func idBytesOf(prefix, id string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != 26 {
		return nil, false
	}
	b, err := idBase32.DecodeString(rest)
	if err != nil || len(b) != idBytes || idBase32.EncodeToString(b) != rest {
		return nil, false
	}
	return b, true
}

// ReplyAddress returns the address at which user's replies are posted into
// thread (the id of a thread's first message) in roomID, "" when replies
// by email are off (no ReplyDomain).
func (n *Notifier) ReplyAddress(user, roomID, thread string) string {
	return n.reply.address(user, roomID, thread)
}

// ReplyTo is where a reply address leads: whose replies, into which
// thread, and the address notifications know that person by (their
// replies must come from it).
type ReplyTo struct {
	User   string
	Room   string
	Thread string
	Member room.Member
	// Email is the person's known address ("" when none is known).
	Email string
}

// errBadReplyAddress answers an address that is not a reply address of
// this server's, or whose person is no longer a member of its room: the
// two are not told apart.
var errBadReplyAddress = dealroom.Errorf(dealroom.ENOTFOUND, "no such reply address")

// OpenReply returns where a reply address leads. The address is read in
// any case; its domain must be the ReplyDomain. ENOTFOUND when it is not
// a reply address made here (or was changed), or when the person it was
// made for is no longer a member of the room; other errors are the
// store's. Whether the person may still post there is for the room to
// say when the reply is posted.
func (n *Notifier) OpenReply(ctx context.Context, address string) (ReplyTo, error) {
	address = strings.ToLower(strings.TrimSpace(address))
	local, domain, ok := strings.Cut(address, "@")
	token, ok2 := strings.CutPrefix(local, replyPrefix)
	if n.reply.domain == "" || !ok || !ok2 || domain != n.reply.domain || len(token) != tokenChars {
		return ReplyTo{}, errBadReplyAddress
	}
	raw, err := idBase32.DecodeString(token)
	if err != nil || len(raw) != tokenSize || idBase32.EncodeToString(raw) != token {
		// The last character's spare bits must be zero: one address per
		// token.
		return ReplyTo{}, errBadReplyAddress
	}
	rb, tb, sum := raw[:idBytes], raw[idBytes:2*idBytes], raw[2*idBytes:]
	roomID := "r_" + idBase32.EncodeToString(rb)
	members, err := n.rooms.Members(ctx, roomID)
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
		return ReplyTo{}, errBadReplyAddress
	}
	if err != nil {
		return ReplyTo{}, err
	}
	for _, m := range members {
		if !hmac.Equal(sum, n.reply.mac(m.UserID, rb, tb)) {
			continue
		}
		to := ReplyTo{User: m.UserID, Room: roomID, Thread: "m_" + idBase32.EncodeToString(tb), Member: m}
		p, err := n.store.Person(ctx, m.UserID)
		if err != nil {
			return ReplyTo{}, err
		}
		if p != nil {
			to.Email = p.Email
		}
		return to, nil
	}
	return ReplyTo{}, errBadReplyAddress
}
