// Package notify tells people by email, at once, of what in a room is
// addressed to them: a mention, and a step assigned to them. It is a
// consumer of the event log (package consume): for each event it finds
// the inbox items room.Project derives from it, keeps those whose
// recipient may still see the item (a customer is never told of an
// internal item, not even its title) and wants email about the room, and
// writes one outbox record per recipient and event (package outbox), whose
// sender mails it. Email preferences are per person (People), overall and
// per room, and every email carries a one-click unsubscribe link (RFC
// 8058) that works without signing in.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"dealroom"
	"dealroom/consume"
	dmail "dealroom/mail"
	"dealroom/outbox"
	"dealroom/room"
)

// Consumer is the name of the notifier's cursors and its lease.
const Consumer = "email"

// Store is what the notifier keeps in the server's store: the event log's
// cursors and lease, the outbox, the people and the keys of reply
// addresses.
type Store interface {
	consume.Store
	outbox.Store
	People
	ReplyKeys
}

// Notifier makes the email of mentions and assignments.
type Notifier struct {
	rooms     room.Store
	store     Store
	publicURL string
	host      string
	key       []byte
	reply     replyAddresses
	delay     time.Duration
	now       func() time.Time
	log       *slog.Logger
	push      *Push // nil: no pushes
	noEmail   bool

	digestHour   int
	digestMu     sync.Mutex
	digestDone   string    // the day whose digests are made
	digestFailed time.Time // when the last walk failed

	reminders reminderState // remind.go
	backfill  backfillState // backfill.go

	// seen caches the addresses recorded, so that Seen writes only news.
	seenMu sync.Mutex
	seen   map[string]string
}

// Config is what a Notifier needs.
type Config struct {
	// PublicURL is where the web app is ("https://deals.example.com"):
	// links in email point there. Required.
	PublicURL string
	// Secret is the server's secret; the key of unsubscribe tokens is
	// derived from it. At least 32 bytes.
	Secret []byte
	// Delay is how long a notification waits before it is sent: what the
	// person sees in the room meanwhile is not mailed, and what comes for
	// them in the room by then goes in the same message (see Sender). 0:
	// sent at the sender's next pass.
	Delay time.Duration
	// DigestHour is the hour (UTC, 0 to 23) at which a day's and a week's
	// (on Mondays) digests are made.
	DigestHour int
	Now        func() time.Time
	Log        *slog.Logger

	// ReplyDomain, when set, is the domain of reply addresses: an email
	// about a thread carries a Reply-To address at it, signed for its
	// recipient, and a reply to it is posted into the thread (package
	// replymail). Empty: no Reply-To.
	ReplyDomain string
	// Push, when set, pushes the same notifications as instant email to
	// people's devices (push.go); NoEmail makes no email (a server
	// without mail that pushes).
	Push    *Push
	NoEmail bool
}

// New returns a notifier over rooms and st.
func New(cfg Config, rooms room.Store, st Store) (*Notifier, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: the public URL must be an http(s) URL")
	}
	if cfg.DigestHour < 0 || cfg.DigestHour > 23 {
		return nil, errors.New("notify: the digest hour is not an hour of the day")
	}
	if len(cfg.Secret) < 32 {
		return nil, errors.New("notify: the secret is shorter than 32 bytes")
	}
	n := &Notifier{rooms: rooms, store: st, publicURL: strings.TrimRight(cfg.PublicURL, "/"), host: u.Hostname(),
		key: tokenKey(cfg.Secret), delay: max(cfg.Delay, 0), digestHour: cfg.DigestHour, now: cfg.Now, log: cfg.Log, seen: map[string]string{},
		push: cfg.Push, noEmail: cfg.NoEmail}
	n.reply = replyAddresses{key: purposeKey(cfg.Secret, "dealroom email reply key"),
		long: purposeKey(cfg.Secret, "dealroom email reply"), domain: strings.ToLower(cfg.ReplyDomain)}
	if n.now == nil {
		n.now = time.Now
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	return n, nil
}

// Consumer returns the notifier as a consumer of the event log.
func (n *Notifier) Consumer() consume.Consumer {
	return consume.Consumer{Name: Consumer, Handle: n.Handle}
}

// Seen records the address of a signed-in actor when it is new or
// changed (the API calls it with every authenticated request; only news
// is written). Failures are logged: the next request tries again.
func (n *Notifier) Seen(ctx context.Context, a dealroom.Actor) {
	if a.ID == "" || a.Email == "" {
		return
	}
	n.seenMu.Lock()
	known := n.seen[a.ID] == a.Email
	n.seenMu.Unlock()
	if known {
		return
	}
	p, err := n.store.Person(ctx, a.ID)
	if err == nil && (p == nil || p.Email != a.Email) {
		err = n.store.SetAddress(ctx, a.ID, a.Email, n.now())
	}
	if err != nil {
		n.log.Warn("recording a person's email address failed", "user", a.ID, "err", err)
		return
	}
	n.seenMu.Lock()
	if len(n.seen) > 100_000 {
		clear(n.seen)
	}
	n.seen[a.ID] = a.Email
	n.seenMu.Unlock()
}

// Handle is the consumer's handler: it writes the outbox records of ev.
// Handing it an event twice writes nothing more (the records' keys).
func (n *Notifier) Handle(ctx context.Context, ev room.Event) error {
	if ev.Type == room.InviteAccepted {
		var d room.InviteAcceptedData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		if d.Invite.Email != "" && d.Member.UserID != "" {
			if err := n.store.SetAddress(ctx, d.Member.UserID, d.Invite.Email, n.now()); err != nil {
				return err
			}
		}
	}
	fx, err := room.Project(ev)
	if err != nil {
		// An event this code cannot read is not worth stopping the room's
		// notifications for good.
		n.log.Warn("an event could not be read for notifications", "room", ev.RoomID, "seq", ev.Seq, "err", err)
		return nil
	}
	var recs []outbox.Record
	var rm *room.Room
	var pushed []room.InboxItem
	for _, it := range fx.Inbox {
		if it.Kind != room.InboxMention && it.Kind != room.InboxAssignment {
			continue
		}
		if it.UserID == ev.Actor.ID {
			continue
		}
		if n.push != nil {
			pushed = append(pushed, it)
		}
		p, err := n.recipient(ctx, it)
		if err != nil {
			return err
		}
		if p == nil {
			continue
		}
		if rm == nil {
			if rm, err = n.rooms.Room(ctx, ev.RoomID); err != nil {
				if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
					return nil
				}
				return err
			}
		}
		rec, err := n.record(ctx, ev, it, p, rm)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	// Replies in a thread and due dates moved: not inbox items, as who
	// wrote in a thread is not in the event (thread.go).
	more, err := n.threadAndDue(ctx, ev, recs)
	if err != nil {
		return err
	}
	recs = append(recs, more...)
	// The same pushed to devices (push.go).
	if n.push != nil {
		more, err = n.pushRecords(ctx, ev, pushed, rm)
		if err != nil {
			return err
		}
		recs = append(recs, more...)
		more, err = n.pushThreadAndDue(ctx, ev, pushed, rm)
		if err != nil {
			return err
		}
		recs = append(recs, more...)
	}
	if len(recs) == 0 {
		return nil
	}
	_, err = n.store.AddOutbox(ctx, recs)
	return err
}

// recipient returns the person an item goes to, nil when it goes to no
// one: they are no longer a member, may not see the item (a customer and
// an internal item), have no known address or turned email off.
func (n *Notifier) recipient(ctx context.Context, it room.InboxItem) (*Person, error) {
	if n.noEmail {
		return nil, nil
	}
	m, err := n.rooms.Member(ctx, it.RoomID, it.UserID)
	if err != nil || m == nil {
		return nil, err
	}
	perm := room.PermOf(dealroom.Actor{ID: m.UserID, Kind: m.Kind}, m)
	if !perm.Sees(it.Visibility) {
		return nil, nil
	}
	p, err := n.store.Person(ctx, it.UserID)
	if err != nil || !p.Wants(it.RoomID) {
		return nil, err
	}
	return p, nil
}

// record makes the outbox record of one item; the email of a mention
// carries the reply address of its thread.
func (n *Notifier) record(ctx context.Context, ev room.Event, it room.InboxItem, p *Person, rm *room.Room) (outbox.Record, error) {
	m, c, err := n.message(ev, it, p, rm)
	if err != nil {
		return outbox.Record{}, err
	}
	if thread := mentionThread(ev, it); thread != "" {
		if m.ReplyTo, err = n.ReplyAddress(ctx, p.User, rm.ID, thread); err != nil {
			return outbox.Record{}, err
		}
	}
	return n.eventRecord(ev, p, m, c)
}

// eventRecord makes the outbox record of the message m, which says c, to
// p about ev.
func (n *Notifier) eventRecord(ev room.Event, p *Person, m dmail.Message, c content) (outbox.Record, error) {
	id := outbox.Key(outbox.Email, p.User, ev.ID)
	m.MessageID = id + "@" + n.host
	// Every notification about a room answers one message that was never
	// sent, the room's, so that mail programs show them as one
	// conversation (GitHub threads its notifications the same way).
	thread := "room." + ev.RoomID + "@" + n.host
	m.InReplyTo, m.References = thread, []string{thread}
	body, err := json.Marshal(payload{Message: m, Item: &c})
	if err != nil {
		return outbox.Record{}, err
	}
	now := n.now()
	return outbox.Record{ID: id, Channel: outbox.Email, Recipient: p.User, RoomID: ev.RoomID, EventID: ev.ID,
		Seq: ev.Seq, Payload: body, State: outbox.Pending, CreatedAt: now, Due: now.Add(n.delay)}, nil
}

// Sender returns the sender of the notifier's outbox: it skips what the
// recipient saw in the room before it was due, and sends what is due for
// one person in one room, or would be within the delay, as one message.
// Set its Log, Observe and Now as needed.
func (n *Notifier) Sender(st outbox.Store, m dmail.Sender) *outbox.Sender {
	s := &outbox.Sender{Store: st, Mail: m, Seen: n.SeenSeq, Combine: n.Combine, Window: n.delay}
	if n.push != nil {
		s.Push = n.SendPush
	}
	return s
}

// SeenSeq returns the highest seq user has seen in room (0: none, or no
// read state kept).
func (n *Notifier) SeenSeq(ctx context.Context, roomID, user string) (int64, error) {
	if _, ok := n.rooms.(room.ReadStore); !ok {
		return 0, nil
	}
	return (&room.Service{Store: n.rooms}).SeenSeq(ctx, roomID, user)
}
