package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"

	"dealroom"
	"dealroom/room"
)

// Reply addresses. An email about a thread (a mention in one of its
// messages, a reply in a thread one wrote in) says "Reply-To:
// reply+KEY@REPLY_DOMAIN", and the answer, received by package replymail,
// is posted into that thread as the person the email was for.
//
// KEY is the first 20 characters (100 bits) of the lower-case base32 of
// an HMAC-SHA256 of the recipient's user id, the room and the thread,
// under a key of its own derived from the server's secret. It says
// nothing of whom or what it is for: the store keeps where each key leads
// (ReplyKeys), written when the notification is made and read when a
// reply arrives; a key not kept there is refused, and so is one whose
// record does not sign to it. The key depends on nothing but the secret
// and what it leads to, so that every instance makes the same address for
// the same person and thread, and recording it again changes nothing.
//
// The local part is 26 octets: RFC 5321 allows 64, and some mail systems
// refuse an address past that. The first reply addresses carried the
// room's and the thread's ids and a MAC in the address itself (74
// octets); those already mailed are still read (openLong). Mail servers
// may change the case of an address's local part, so both are lower-case
// base32 and read in any case. Like unsubscribe links, reply addresses do
// not expire: a reply to an old email is still a reply; who may post is
// checked when it arrives.

// replyPrefix starts the local part of every reply address.
const replyPrefix = "reply+"

// idBase32 is the alphabet of room ids (package room), and that of reply
// keys: a room or message id is its prefix, "_" and 16 bytes in it.
var idBase32 = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// keyChars is the length of a reply key: 100 bits.
const keyChars = 20

// ReplyKey is what a reply address's key leads to: whose replies go into
// which thread of which room.
type ReplyKey struct {
	Key    string
	User   string
	Room   string
	Thread string // the id of the thread's first message
	// CreatedAt is when the key was first recorded.
	CreatedAt time.Time
}

// ReplyKeys keeps the keys of reply addresses. Implementations: boltstore
// and mongostore, checked by notifytest.TestReplyKeys.
type ReplyKeys interface {
	// AddReplyKey records k unless a record of k.Key is kept already; then
	// it changes nothing (keys are derived from what they lead to, so
	// every instance records the same).
	AddReplyKey(ctx context.Context, k ReplyKey) error
	// ReplyKey returns the record of key, nil when there is none.
	ReplyKey(ctx context.Context, key string) (*ReplyKey, error)
}

// replyAddresses makes and opens reply addresses.
type replyAddresses struct {
	key    []byte // of reply keys
	long   []byte // of the first, long addresses
	domain string // lower case; "" when replies by email are off
}

// replyKey returns the key of user's address for thread in roomID.
func (r replyAddresses) replyKey(user, roomID, thread string) string {
	mac := hmac.New(sha256.New, r.key)
	for _, s := range []string{user, roomID, thread} {
		// Each length first: no two triples write the same bytes.
		mac.Write(binary.AppendUvarint(nil, uint64(len(s))))
		mac.Write([]byte(s))
	}
	return idBase32.EncodeToString(mac.Sum(nil))[:keyChars]
}

// ReplyAddress returns the address at which user's replies are posted into
// thread (the id of a thread's first message) in roomID, and records its
// key, so that OpenReply knows it; "" when replies by email are off (no
// ReplyDomain). The address is the same each time, from every notifier of
// the same secret. The error is the store's.
func (n *Notifier) ReplyAddress(ctx context.Context, user, roomID, thread string) (string, error) {
	if n.reply.domain == "" || user == "" || roomID == "" || thread == "" {
		return "", nil
	}
	k := ReplyKey{Key: n.reply.replyKey(user, roomID, thread), User: user, Room: roomID, Thread: thread, CreatedAt: n.now()}
	if err := n.store.AddReplyKey(ctx, k); err != nil {
		return "", err
	}
	return replyPrefix + k.Key + "@" + n.reply.domain, nil
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
	if n.reply.domain == "" || !ok || !ok2 || domain != n.reply.domain {
		return ReplyTo{}, errBadReplyAddress
	}
	var to ReplyTo
	var err error
	switch len(token) {
	case keyChars:
		to, err = n.openKey(ctx, token)
	case longChars:
		to, err = n.openLong(ctx, token)
	default:
		return ReplyTo{}, errBadReplyAddress
	}
	if err != nil {
		return ReplyTo{}, err
	}
	m, err := n.rooms.Member(ctx, to.Room, to.User)
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND || (err == nil && m == nil) {
		return ReplyTo{}, errBadReplyAddress
	}
	if err != nil {
		return ReplyTo{}, err
	}
	to.Member = *m
	p, err := n.store.Person(ctx, to.User)
	if err != nil {
		return ReplyTo{}, err
	}
	if p != nil {
		to.Email = p.Email
	}
	return to, nil
}

// openKey returns the user, room and thread of a reply key: the store's
// record of it.
func (n *Notifier) openKey(ctx context.Context, key string) (ReplyTo, error) {
	if strings.Trim(key, "0123456789abcdefghjkmnpqrstvwxyz") != "" {
		return ReplyTo{}, errBadReplyAddress
	}
	k, err := n.store.ReplyKey(ctx, key)
	if err != nil {
		return ReplyTo{}, err
	}
	// A record must sign to its key under this server's secret: one made
	// under another secret, or written by anything else, leads nowhere.
	if k == nil || !hmac.Equal([]byte(key), []byte(n.reply.replyKey(k.User, k.Room, k.Thread))) {
		return ReplyTo{}, errBadReplyAddress
	}
	return ReplyTo{User: k.User, Room: k.Room, Thread: k.Thread}, nil
}

// The first reply addresses: "reply+" and 68 characters of lower-case
// base32 of the room's id (16 bytes), the thread's (16 bytes) and an
// HMAC-SHA256 truncated to 80 bits of the recipient's user id, the room and
// the thread; the recipient was the member of the room whose MAC matched.
// None is made now; those already mailed are still read.
const (
	idBytes      = 16
	longMACBytes = 10
	longSize     = 2*idBytes + longMACBytes
	longChars    = (longSize*8 + 4) / 5 // 68
)

func (r replyAddresses) longMAC(user string, roomID, thread []byte) []byte {
	mac := hmac.New(sha256.New, r.long)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write(roomID)
	mac.Write(thread)
	return mac.Sum(nil)[:longMACBytes]
}

// openLong returns where one of the first, long tokens leads: the member
// of its room whose MAC matches.
func (n *Notifier) openLong(ctx context.Context, token string) (ReplyTo, error) {
	raw, err := idBase32.DecodeString(token)
	if err != nil || len(raw) != longSize || idBase32.EncodeToString(raw) != token {
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
		if hmac.Equal(sum, n.reply.longMAC(m.UserID, rb, tb)) {
			return ReplyTo{User: m.UserID, Room: roomID, Thread: "m_" + idBase32.EncodeToString(tb)}, nil
		}
	}
	return ReplyTo{}, errBadReplyAddress
}
