package session

import (
	"context"
	"strconv"
	"strings"
	"time"

	"dealroom"
)

// Sign-in links by email: a customer on a new device asks for one, and
// the link's code, redeemed once within its lifetime, opens a session.
// Each code is a ticket ("link:" and the code's Hash) whose subject is
// the address it was sent to; the store keeps no code.
//
// How many links one address gets is bounded by tickets too: an address
// has PerAddress slots ("link-budget:", the address's hash and the slot's
// number), each held for a link's lifetime once used, so that nobody can
// fill a member's mailbox with sign-in links, on any number of instances.

// Defaults of Links.
const (
	// DefaultLinkLife: fifteen minutes, time enough to switch to the mail
	// and back; a link found later in a mailbox opens nothing.
	DefaultLinkLife = 15 * time.Minute
	// DefaultLinksPerAddress: three links per address per lifetime (one
	// lost in a spam folder, one more, and one to spare).
	DefaultLinksPerAddress = 3
)

// Links issues and redeems the codes of sign-in links.
type Links struct {
	Store Tickets
	// Life is how long a code may be redeemed (DefaultLinkLife); it is
	// also the window of PerAddress.
	Life time.Duration
	// PerAddress is how many codes one address gets within Life
	// (DefaultLinksPerAddress).
	PerAddress int
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (l *Links) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Links) life() time.Duration {
	if l.Life > 0 {
		return l.Life
	}
	return DefaultLinkLife
}

// LinkTicket returns the id of the ticket of a link's code.
func LinkTicket(code string) string { return "link:" + Hash(code) }

// Issue returns a new code for a sign-in link to email, redeemable once
// within Life. It returns "" and no error when the address had its
// PerAddress codes within Life already: the caller then sends nothing,
// and says so to nobody.
func (l *Links) Issue(ctx context.Context, email string) (string, error) {
	now := l.now()
	ok, err := l.spend(ctx, email, now)
	if err != nil || !ok {
		return "", err
	}
	code := NewSecret()
	added, err := l.Store.AddTicket(ctx, Ticket{ID: LinkTicket(code), Subject: email, CreatedAt: now, ExpiresAt: now.Add(l.life())})
	if err != nil {
		return "", err
	}
	if !added {
		// Two random 256-bit codes alike: never, unless the random
		// source is broken.
		return "", dealroom.Errorf(dealroom.EINTERNAL, "a new sign-in code was in use already")
	}
	return code, nil
}

// spend takes one of the address's slots, and reports false when none is
// free.
func (l *Links) spend(ctx context.Context, email string, now time.Time) (bool, error) {
	n := l.PerAddress
	if n <= 0 {
		n = DefaultLinksPerAddress
	}
	key := "link-budget:" + Hash(strings.ToLower(strings.TrimSpace(email))) + ":"
	for i := range n {
		added, err := l.Store.AddTicket(ctx, Ticket{ID: key + strconv.Itoa(i), CreatedAt: now, ExpiresAt: now.Add(l.life())})
		if err != nil || added {
			return added, err
		}
	}
	return false, nil
}

// ErrLinkRefused answers a code that is not (or no longer) redeemable:
// the same whether it never was, was used, or expired, so that an answer
// tells nothing about other people's links.
var ErrLinkRefused = dealroom.Errorf(dealroom.EUNAUTH,
	"this sign-in link is not valid: it was used already or has expired; ask for a new one")

// Redeem uses a code once and returns the address its link was sent to.
// ErrLinkRefused when the code is unknown, used or expired.
func (l *Links) Redeem(ctx context.Context, code string) (string, error) {
	if code == "" || len(code) > 100 {
		return "", ErrLinkRefused
	}
	t, err := l.Store.TakeTicket(ctx, LinkTicket(code), l.now())
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
		return "", ErrLinkRefused
	}
	if err != nil {
		return "", err
	}
	return t.Subject, nil
}
