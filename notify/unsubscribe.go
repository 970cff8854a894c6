package notify

import (
	"context"

	"dealroom"
)

// Unsubscription is what an unsubscribe link names, for its page.
type Unsubscription struct {
	User string
	// Room is the room the link's email was about ("" for none), RoomName
	// its name ("" when it is gone).
	Room, RoomName string
}

// Unsubscription returns what token names, ENOTFOUND when it is not a
// token of this server's.
func (n *Notifier) Unsubscription(ctx context.Context, token string) (Unsubscription, error) {
	user, roomID, err := n.openToken(token)
	if err != nil {
		return Unsubscription{}, err
	}
	u := Unsubscription{User: user, Room: roomID}
	if roomID != "" {
		r, err := n.rooms.Room(ctx, roomID)
		switch {
		case err == nil:
			u.RoomName = r.Name
		case dealroom.ErrorCode(err) != dealroom.ENOTFOUND:
			return Unsubscription{}, err
		}
	}
	return u, nil
}

// Unsubscribe turns off the email token names: of its room, or of every
// room with all (or when it names none). ENOTFOUND for a token not of this
// server's. Doing it twice is the same as once.
func (n *Notifier) Unsubscribe(ctx context.Context, token string, all bool) (Unsubscription, error) {
	u, err := n.Unsubscription(ctx, token)
	if err != nil {
		return u, err
	}
	roomID := u.Room
	if all {
		roomID = ""
	}
	return u, n.store.SetEmail(ctx, u.User, roomID, true, n.now())
}

// Preferences returns the user's record as it stands (a zero one, for the
// user, when there is none).
func (n *Notifier) Preferences(ctx context.Context, user string) (Person, error) {
	p, err := n.store.Person(ctx, user)
	if err != nil || p == nil {
		return Person{User: user}, err
	}
	return *p, nil
}

// SetDigest records how often the user gets the digest: Daily, Weekly,
// Off, or "" for the default (DigestOf). EINVALID for another value.
func (n *Notifier) SetDigest(ctx context.Context, user, digest string) error {
	switch digest {
	case Daily, Weekly, Off, "":
	default:
		return dealroom.Invalid("digest", "digest must be daily, weekly or off")
	}
	return n.store.SetDigest(ctx, user, digest, n.now())
}

// SetPreference turns the user's email off or on: of a room, or of all
// with roomID "".
func (n *Notifier) SetPreference(ctx context.Context, user, roomID string, off bool) error {
	return n.store.SetEmail(ctx, user, roomID, off, n.now())
}
