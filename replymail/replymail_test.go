package replymail_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/consume"
	"dealroom/internal/testclock"
	"dealroom/internal/testenv"
	"dealroom/mail"
	"dealroom/mongostore"
	"dealroom/notify"
	"dealroom/notify/notifytest"
	"dealroom/replymail"
	"dealroom/room"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const replyDomain = "reply.deals.example.com"

var (
	alice = notifytest.Alice
	bob   = notifytest.Bob
)

const carolEmail = "carol@acme.example"

// stores are the stores the replies are posted into.
var stores = map[string]func(tb testing.TB) notifytest.Store{
	"bolt": func(tb testing.TB) notifytest.Store {
		s, err := boltstore.Open(tb.TempDir())
		require.NoError(tb, err)
		tb.Cleanup(func() { s.Close() })
		return s
	},
	"mongo": func(tb testing.TB) notifytest.Store {
		uri, db := testenv.MongoDatabase(tb)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := mongostore.Open(ctx, uri, mongostore.WithDatabase(db))
		require.NoError(tb, err)
		tb.Cleanup(func() { s.Close() })
		return s
	},
}

// env is a room of Alice (admin), Bob (staff) and Carol (a customer, by
// invite), a notifier whose emails carry reply addresses and go to a real
// SMTP server, and the reply server on a port of 127.0.0.1.
type env struct {
	clock  *testclock.Clock
	store  notifytest.Store
	svc    *room.Service
	n      *notify.Notifier
	out    *testenv.SMTPServer
	mail   mail.Sender
	addr   string // the reply server's
	room   string
	carol  dealroom.Actor
	invite string
}

func newEnv(t *testing.T, st notifytest.Store, cfg replymail.Config) *env {
	return newDelayedEnv(t, st, cfg, 0)
}

// newDelayedEnv is newEnv with notifications that wait delay, on a clock
// the test moves.
func newDelayedEnv(t *testing.T, st notifytest.Store, cfg replymail.Config, delay time.Duration) *env {
	ctx := context.Background()
	out := testenv.StartSMTP(t, testenv.SMTPOptions{})
	m, err := mail.Open(mail.Config{URL: out.URL(), From: "Dealroom <rooms@deals.example.com>", Rate: 1000})
	require.NoError(t, err)
	clock := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	n, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: notifytest.Secret, ReplyDomain: replyDomain,
		Delay: delay, Now: clock.Now}, st, st)
	require.NoError(t, err)
	e := &env{clock: clock, store: st, svc: &room.Service{Store: st, Now: clock.Now}, n: n, out: out, mail: m}
	require.NoError(t, e.runner().Pass(ctx, nil), "the consumer starts on the empty store")

	r, err := e.svc.CreateRoom(ctx, alice, room.Draft{Name: "Acme renewal", Company: "Acme"}, "")
	require.NoError(t, err)
	e.room = r.ID
	_, err = e.svc.AddMember(ctx, alice, r.ID, room.MemberDraft{UserID: bob.ID, Name: bob.Name, Kind: dealroom.Staff, Access: room.Write}, "")
	require.NoError(t, err)
	inv, err := e.svc.CreateInvite(ctx, alice, r.ID, room.InviteDraft{Email: carolEmail, Access: room.Write}, "")
	require.NoError(t, err)
	_, carol, err := e.svc.AcceptInvite(ctx, inv.Code, room.Acceptance{Name: "Carol Buyer", Email: carolEmail})
	require.NoError(t, err)
	e.carol = dealroom.Actor{ID: carol.UserID, Name: carol.Name, Email: carolEmail, Kind: dealroom.Customer, Invite: inv.ID}
	e.invite = inv.ID
	n.Seen(ctx, alice)
	n.Seen(ctx, bob)
	e.deliver(t) // Carol's address, from her invite

	cfg.Domain, cfg.Addresses, cfg.Service = replyDomain, n, e.svc
	srv, err := replymail.New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.NoError(t, <-done)
		assert.NoError(t, srv.Close(), "twice")
	})
	e.addr = l.Addr().String()
	return e
}

func (e *env) runner() *consume.Runner {
	sender := e.n.Sender(e.store, e.mail)
	sender.Now = e.clock.Now
	return &consume.Runner{Store: e.store, Events: e.store, Lease: notify.Consumer, Holder: "test",
		Consumers: []consume.Consumer{e.n.Consumer()}, Jobs: []func(context.Context) error{sender.Send},
		Interval: 20 * time.Millisecond, LeaseTTL: 3 * time.Second}
}

// deliver runs one pass of the notifier and its sender.
func (e *env) deliver(t *testing.T) {
	t.Helper()
	r := e.runner()
	require.NoError(t, r.Pass(context.Background(), nil))
	for _, job := range r.Jobs {
		require.NoError(t, job(context.Background()))
	}
}

// replyTo returns the Reply-To of the one notification that reached
// address since skip messages were received.
func (e *env) replyTo(t *testing.T, address string, skip int) string {
	t.Helper()
	var got []string
	for _, m := range e.out.Messages()[skip:] {
		if len(m.To) == 1 && strings.EqualFold(m.To[0], address) {
			got = append(got, m.Header.Get("Reply-To"))
		}
	}
	require.Len(t, got, 1, "one notification to %s", address)
	require.NotEmpty(t, got[0])
	return strings.Trim(got[0], "<>")
}

// post posts a message a second after the last post or send, so that
// messages sort as they were posted.
func (e *env) post(t *testing.T, a dealroom.Actor, d room.MessageDraft) room.Message {
	t.Helper()
	e.clock.Advance(time.Second)
	res, err := e.svc.PostMessage(context.Background(), a, e.room, d, "")
	require.NoError(t, err)
	return res.Message
}

// replies returns the replies of a thread, as Alice sees them.
func (e *env) replies(t *testing.T, thread string) []room.Message {
	t.Helper()
	ms, err := e.svc.Messages(context.Background(), alice, room.MessageFilter{Room: e.room, ParentID: thread, Limit: 100})
	require.NoError(t, err)
	return ms
}

// head is the room's last seq: unchanged when nothing was written.
func (e *env) head(t *testing.T) int64 {
	t.Helper()
	r, err := e.store.Room(context.Background(), e.room)
	require.NoError(t, err)
	return r.Head
}

// email is a reply as a mail program writes it.
func email(from, to, messageID, body string, headers ...string) string {
	h := []string{"From: " + from, "To: " + to, "Subject: Re: your room", "Date: Mon, 2 Mar 2026 10:00:00 +0000",
		"Message-ID: <" + messageID + ">", "Content-Type: text/plain; charset=utf-8"}
	return strings.Join(append(h, headers...), "\r\n") + "\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
}

// sendStep names the SMTP command a refusal answered.
type sendStep string

// send sends raw from mailFrom to rcpts through the reply server, and
// returns the first refusal and the command it answered.
func (e *env) send(t *testing.T, mailFrom string, rcpts []string, raw string) (sendStep, error) {
	t.Helper()
	e.clock.Advance(time.Second)
	c := e.dial(t)
	defer c.Close()
	if err := c.Mail(mailFrom); err != nil {
		return "MAIL", err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return "RCPT", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "DATA", err
	}
	_, err = io.WriteString(w, raw)
	require.NoError(t, err)
	if err := w.Close(); err != nil {
		return "end of DATA", err
	}
	return "", c.Quit()
}

// dial connects to the reply server; while it answers 421 (TestLimits
// bounds the connections to one, and a connection ends on the server's
// side a moment after the client's), it tries again.
func (e *env) dial(t *testing.T) *smtp.Client {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := smtp.Dial(e.addr)
		if err == nil {
			return c
		}
		require.Equal(t, 421, code(err), "dial: %v", err)
		require.True(t, time.Now().Before(deadline), "the server still answers 421")
		time.Sleep(10 * time.Millisecond)
	}
}

// code is the SMTP code of a refusal, 0 for none.
func code(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { fn(t, newEnv(t, open(t), replymail.Config{})) })
	}
}

// TestReplyToANotification: the notification of a mention carries its
// recipient's reply address; the answer sent to it is posted into the
// mention's thread as its recipient, without the quoted notification.
// A mention in a reply, and the email of a reply in a thread one wrote
// in, lead to the thread's first message; a staff
// member's reply in an internal thread is internal.
func TestReplyToANotification(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		root := e.post(t, alice, room.MessageDraft{Body: "Ready to sign, @Carol Buyer? Price is firm."})
		e.deliver(t)
		to := e.replyTo(t, carolEmail, 0)
		assert.True(t, strings.HasPrefix(to, "reply+"), to)
		assert.True(t, strings.HasSuffix(to, "@"+replyDomain), to)
		local, _, _ := strings.Cut(to, "@")
		assert.LessOrEqual(t, len(local), 64, "RFC 5321's limit of a local part: %s", local)

		body := "Yes, send the contract. @Alice Seller can you start the PO?\n\n" +
			"On Mon, Mar 2, 2026 at 9:00 AM Dealroom <" + to + "> wrote:\n> Alice Seller mentioned you in Acme renewal:\n> Ready to sign?\n"
		// Mail servers may change the case of the address; mail programs
		// that of the sender's.
		step, err := e.send(t, "carol@acme.example", []string{strings.ToUpper(to)}, email("Carol Buyer <Carol@ACME.example>", to, "c1@acme.example", body))
		require.NoError(t, err, step)
		rs := e.replies(t, root.ID)
		require.Len(t, rs, 1)
		assert.Equal(t, "Yes, send the contract. @Alice Seller can you start the PO?", rs[0].Body)
		assert.Equal(t, e.carol.ID, rs[0].Author)
		assert.Equal(t, "Carol Buyer", rs[0].AuthorName)
		assert.Equal(t, dealroom.Shared, rs[0].Visibility)
		assert.Equal(t, []string{alice.ID}, rs[0].Mentions, "a mention in a reply by email reaches its person")

		// Alice is told of the mention in Carol's reply; her answer goes
		// into the same thread.
		sent := len(e.out.Messages())
		e.deliver(t)
		toAlice := e.replyTo(t, alice.Email, sent)
		step, err = e.send(t, alice.Email, []string{toAlice}, email(alice.Email, toAlice, "a1@bank.example", "Started it.\n\n-- \nAlice Seller\nBank"))
		require.NoError(t, err, step)
		rs = e.replies(t, root.ID)
		require.Len(t, rs, 2)
		assert.Equal(t, "Started it.", rs[1].Body)
		assert.Equal(t, alice.ID, rs[1].Author)

		// Carol, who wrote in the thread, is told of Alice's reply (not a
		// mention); her answer to that email goes into the thread too.
		sent = len(e.out.Messages())
		e.deliver(t)
		toCarol := e.replyTo(t, carolEmail, sent)
		step, err = e.send(t, carolEmail, []string{toCarol}, email(carolEmail, toCarol, "c2@acme.example", "Thanks!\n\n> Started it."))
		require.NoError(t, err, step)
		rs = e.replies(t, root.ID)
		require.Len(t, rs, 3)
		assert.Equal(t, "Thanks!", rs[2].Body)
		assert.Equal(t, e.carol.ID, rs[2].Author)

		// An internal thread: Bob's answer is internal too.
		note := e.post(t, alice, room.MessageDraft{Body: "@Bob Engineer floor is 80k", Visibility: dealroom.Internal})
		sent = len(e.out.Messages())
		e.deliver(t)
		toBob := e.replyTo(t, bob.Email, sent)
		step, err = e.send(t, bob.Email, []string{toBob}, email(bob.Email, toBob, "b1@bank.example", "Understood."))
		require.NoError(t, err, step)
		rs = e.replies(t, note.ID)
		require.Len(t, rs, 1)
		assert.Equal(t, bob.ID, rs[0].Author)
		assert.Equal(t, dealroom.Internal, rs[0].Visibility)
	})
}

// TestRefusedAddresses: an address that is not a reply address this
// server made for a member, at its domain, is refused at RCPT, and
// nothing is written: a changed key, a key made with another secret or
// never made here, a key of someone not a member of the room, and the
// same of the first, long addresses.
func TestRefusedAddresses(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		root := e.post(t, alice, room.MessageDraft{Body: "Ready, @Carol Buyer?"})
		e.deliver(t)
		to := e.replyTo(t, carolEmail, 0)
		local, _, _ := strings.Cut(to, "@")
		token := strings.TrimPrefix(local, "reply+")
		long := strings.TrimSuffix(strings.TrimPrefix(longAddress(e.carol.ID, e.room, root.ID), "reply+"), "@"+replyDomain)
		flip := func(token string, i int) string {
			c := byte('a')
			if token[i] == 'a' {
				c = 'b'
			}
			return "reply+" + token[:i] + string(c) + token[i+1:] + "@" + replyDomain
		}
		otherRoom, err := e.svc.CreateRoom(ctx, alice, room.Draft{Name: "Other", Company: "Other"}, "")
		require.NoError(t, err)
		issue := func(n *notify.Notifier, user, roomID, thread string) string {
			a, err := n.ReplyAddress(ctx, user, roomID, thread)
			require.NoError(t, err)
			return a
		}
		// Another server's notifier, of another secret, writes its key in
		// this store; another store's notifier, of this secret, a key of
		// a member that this store never had.
		otherSecret, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: []byte(strings.Repeat("another secret ", 4)),
			ReplyDomain: replyDomain}, e.store, e.store)
		require.NoError(t, err)
		elsewhere := stores["bolt"](t)
		otherStore, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: notifytest.Secret, ReplyDomain: replyDomain}, elsewhere, elsewhere)
		require.NoError(t, err)
		otherThread := e.post(t, alice, room.MessageDraft{Body: "Another thread"})
		head := e.head(t)
		for name, addr := range map[string]string{
			"a changed first character":               flip(token, 0),
			"a changed character":                     flip(token, 9),
			"a changed last character":                flip(token, len(token)-1),
			"a key one character longer":              "reply+" + token + "a@" + replyDomain,
			"a key of another alphabet":               "reply+" + token[:len(token)-1] + "_@" + replyDomain,
			"another domain":                          local + "@deals.example.com",
			"a domain ending in ours":                 local + "@evil" + replyDomain,
			"without the prefix":                      token + "@" + replyDomain,
			"cut short":                               local[:len(local)-1] + "@" + replyDomain,
			"made for another room":                   issue(e.n, e.carol.ID, otherRoom.ID, root.ID),
			"made for someone not a member":           issue(e.n, "mallory", e.room, root.ID),
			"made with another secret":                issue(otherSecret, e.carol.ID, e.room, otherThread.ID),
			"never made here":                         issue(otherStore, e.carol.ID, e.room, otherThread.ID),
			"long: a changed character of the room":   flip(long, 3),
			"long: a changed character of the thread": flip(long, 30),
			"long: a changed character of the MAC":    flip(long, 60),
			"long: a changed last character":          flip(long, len(long)-1),
			"long: made for someone not a member":     longAddress("mallory", e.room, root.ID),
			"not an address":                          "postmaster",
		} {
			step, err := e.send(t, carolEmail, []string{addr}, email(carolEmail, addr, "x@acme.example", "Forged."))
			assert.Equal(t, sendStep("RCPT"), step, name)
			assert.Equal(t, 550, code(err), name)
		}
		assert.Equal(t, head, e.head(t), "nothing written")
		assert.Empty(t, e.replies(t, root.ID))
	})
}

// TestRefusedSenders: a reply whose From is not its person's address,
// from a person no longer a member, a customer whose invite was revoked,
// or a reader, is refused with 550, and nothing is written.
func TestRefusedSenders(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		root := e.post(t, alice, room.MessageDraft{Body: "@Carol Buyer @Bob Engineer thoughts?"})
		e.deliver(t)
		toCarol, toBob := e.replyTo(t, carolEmail, 0), e.replyTo(t, bob.Email, 0)
		longCarol := longAddress(e.carol.ID, e.room, root.ID)
		head := e.head(t)
		refused := func(name, from, to, wantStep string) {
			t.Helper()
			step, err := e.send(t, "x@example.com", []string{to}, email(from, to, name+"@example.com", "Let me in."))
			assert.Equal(t, sendStep(wantStep), step, name)
			assert.Equal(t, 550, code(err), name)
			assert.Empty(t, e.replies(t, root.ID), name)
		}

		refused("forged from", bob.Email, toCarol, "end of DATA")
		refused("from another address of the domain", "carol.buyer@acme.example", toCarol, "end of DATA")
		refused("two from addresses", carolEmail+", "+bob.Email, toCarol, "end of DATA")
		assert.Equal(t, head, e.head(t))

		_, err := e.svc.UpdateMember(ctx, alice, e.room, bob.ID, room.MemberPatch{Access: dealroom.Some(room.Read)}, "")
		require.NoError(t, err)
		head = e.head(t)
		refused("a reader", bob.Email, toBob, "end of DATA")
		assert.Equal(t, head, e.head(t))

		_, err = e.svc.RevokeInvite(ctx, alice, e.room, e.invite, "")
		require.NoError(t, err)
		head = e.head(t)
		refused("a customer whose invite was revoked", carolEmail, toCarol, "end of DATA")
		assert.Equal(t, head, e.head(t))

		_, err = e.svc.RemoveMember(ctx, alice, e.room, e.carol.ID, "")
		require.NoError(t, err)
		head = e.head(t)
		refused("no longer a member", carolEmail, toCarol, "RCPT")
		refused("no longer a member, a long address", carolEmail, longCarol, "RCPT")
		assert.Equal(t, head, e.head(t))
	})
}

// TestDeliveredTwice: the same message delivered twice (one Message-ID,
// or the same bytes without one) is posted once; another message with the
// same text is another reply.
func TestDeliveredTwice(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		root := e.post(t, alice, room.MessageDraft{Body: "Ready, @Carol Buyer?"})
		e.deliver(t)
		to := e.replyTo(t, carolEmail, 0)
		raw := email(carolEmail, to, "same@acme.example", "Yes.")
		for range 2 {
			step, err := e.send(t, carolEmail, []string{to}, raw)
			require.NoError(t, err, step)
		}
		assert.Len(t, e.replies(t, root.ID), 1)
		step, err := e.send(t, carolEmail, []string{to}, email(carolEmail, to, "other@acme.example", "Yes."))
		require.NoError(t, err, step)
		assert.Len(t, e.replies(t, root.ID), 2)

		// Without a Message-ID, the same bytes are the same message.
		raw = strings.Replace(email(carolEmail, to, "", "Sure."), "Message-ID: <>\r\n", "", 1)
		require.NotContains(t, raw, "Message-ID")
		for range 2 {
			step, err := e.send(t, carolEmail, []string{to}, raw)
			require.NoError(t, err, step)
		}
		assert.Len(t, e.replies(t, root.ID), 3)
	})
}

// TestNotPosted: automatic answers are taken and dropped; an empty reply
// and one that cannot be read are refused.
func TestNotPosted(t *testing.T) {
	e := newEnv(t, stores["bolt"](t), replymail.Config{})
	root := e.post(t, alice, room.MessageDraft{Body: "Ready, @Carol Buyer?"})
	e.deliver(t)
	to := e.replyTo(t, carolEmail, 0)
	head := e.head(t)
	for _, tt := range []struct {
		name, mailFrom, raw string
		code                int
	}{
		{"out of office", carolEmail, email(carolEmail, to, "o1@acme.example", "I am away.", "Auto-Submitted: auto-replied"), 0},
		{"an old autoresponder", carolEmail, email(carolEmail, to, "o2@acme.example", "I am away.", "Precedence: bulk"), 0},
		{"an empty return path", "", email(carolEmail, to, "o3@acme.example", "Delivery failed."), 0},
		{"only the quote", carolEmail, email(carolEmail, to, "e1@acme.example", "\n\nOn Mon, Dealroom <"+to+"> wrote:\n> Ready?"), 550},
		{"no text part", carolEmail, strings.Replace(email(carolEmail, to, "e2@acme.example", "x"), "text/plain", "image/png", 1), 550},
		{"an unknown charset", carolEmail, strings.Replace(email(carolEmail, to, "e3@acme.example", "x"), "utf-8", "x-unknown", 1), 550},
	} {
		_, err := e.send(t, tt.mailFrom, []string{to}, tt.raw)
		assert.Equal(t, tt.code, code(err), tt.name)
	}
	assert.Equal(t, head, e.head(t), "nothing written")
	assert.Empty(t, e.replies(t, root.ID))
}

// TestLimits: a message over the size limit is refused (552); recipients
// past the bound are refused (452); a connection past the bound is
// answered 421 and closed.
func TestLimits(t *testing.T) {
	e := newEnv(t, stores["bolt"](t), replymail.Config{MaxBytes: 4096, MaxRecipients: 2, MaxConnections: 1})
	root := e.post(t, alice, room.MessageDraft{Body: "Ready, @Carol Buyer?"})
	e.deliver(t)
	to := e.replyTo(t, carolEmail, 0)

	step, err := e.send(t, carolEmail, []string{to}, email(carolEmail, to, "big@acme.example", strings.Repeat("All good.\n", 500)))
	assert.Equal(t, 552, code(err), "%s: %v", step, err)
	assert.Empty(t, e.replies(t, root.ID))

	step, err = e.send(t, carolEmail, []string{to, to, to}, email(carolEmail, to, "many@acme.example", "Yes."))
	assert.Equal(t, sendStep("RCPT"), step)
	assert.Equal(t, 452, code(err))

	// The connections of the sends above end on the server's side soon
	// after they do on ours. smtp.Dial reads the greeting: the first
	// connection is being served when it returns.
	first := e.dial(t)
	c, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	line, err := textproto.NewReader(bufio.NewReader(c)).ReadLine()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(line, "421 "), line)
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed")
	c.Close()
	require.NoError(t, first.Quit())
	first.Close()

	// The slot is free again once the first connection ended.
	step, err = e.send(t, carolEmail, []string{to}, email(carolEmail, to, "after@acme.example", "Yes."))
	require.NoError(t, err, step)
	assert.Len(t, e.replies(t, root.ID), 1)
}

// TestOneMailOfSeveral: a mail that tells of mentions in several threads
// has no reply address (an answer could go into one only); one that tells
// of mentions in one thread has that thread's.
func TestOneMailOfSeveral(t *testing.T) {
	const delay = 2 * time.Minute
	e := newDelayedEnv(t, stores["bolt"](t), replymail.Config{}, delay)
	e.post(t, alice, room.MessageDraft{Body: "@Carol Buyer first question"})
	e.post(t, alice, room.MessageDraft{Body: "@Carol Buyer second question"})
	sent := len(e.out.Messages())
	e.deliver(t) // the notifications are made, due after the delay
	e.clock.Advance(delay)
	e.deliver(t)
	got := e.out.Messages()[sent:]
	require.Len(t, got, 1, "one mail of the two mentions")
	assert.Contains(t, got[0].Text, "2 new notifications")
	assert.Empty(t, got[0].Header.Get("Reply-To"), "two threads")

	root := e.post(t, alice, room.MessageDraft{Body: "@Carol Buyer third question"})
	e.post(t, alice, room.MessageDraft{Body: "@Carol Buyer and a detail", ParentID: root.ID})
	sent = len(e.out.Messages())
	e.deliver(t)
	e.clock.Advance(delay)
	e.deliver(t)
	to := e.replyTo(t, carolEmail, sent)
	step, err := e.send(t, carolEmail, []string{to}, email(carolEmail, to, "c3@acme.example", "Answered both."))
	require.NoError(t, err, step)
	rs := e.replies(t, root.ID)
	require.Len(t, rs, 2)
	assert.Equal(t, "Answered both.", rs[1].Body)
}

// TestReplyAddress: no reply address without a reply domain; one per
// person and thread, 26 octets before the "@", the same from every
// instance of the server (another notifier, over another store).
func TestReplyAddress(t *testing.T) {
	ctx := context.Background()
	st := stores["bolt"](t)
	roomID, thread := room.NewID("r", time.Now()), room.NewID("m", time.Now())
	off, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: notifytest.Secret}, st, st)
	require.NoError(t, err)
	a, err := off.ReplyAddress(ctx, "carol", roomID, thread)
	require.NoError(t, err)
	assert.Empty(t, a)

	on, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: notifytest.Secret, ReplyDomain: "Reply.Example"}, st, st)
	require.NoError(t, err)
	address := func(n *notify.Notifier, user, roomID, thread string) string {
		t.Helper()
		a, err := n.ReplyAddress(ctx, user, roomID, thread)
		require.NoError(t, err)
		return a
	}
	a = address(on, "carol", roomID, thread)
	assert.Regexp(t, `^reply\+[0-9a-z]{20}@reply\.example$`, a)
	assert.Equal(t, a, address(on, "carol", roomID, thread), "made again")
	assert.NotEqual(t, a, address(on, "bob", roomID, thread))
	assert.NotEqual(t, a, address(on, "carol", room.NewID("r", time.Now()), thread))
	assert.NotEqual(t, a, address(on, "carol", roomID, room.NewID("m", time.Now())))
	assert.NotEqual(t, address(on, "ab", "c", "d"), address(on, "a", "bc", "d"), "the parts are not run together")

	other := stores["mongo"](t)
	instance, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: notifytest.Secret, ReplyDomain: "reply.example"}, other, other)
	require.NoError(t, err)
	assert.Equal(t, a, address(instance, "carol", roomID, thread), "another instance")
}

// TestTwoInstances: another instance that makes a notification of the
// same thread for the same person makes the same address, and leaves its
// record as it was; the reply to it is posted once.
func TestTwoInstances(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		root := e.post(t, alice, room.MessageDraft{Body: "Ready, @Carol Buyer?"})
		e.deliver(t)
		to := e.replyTo(t, carolEmail, 0)
		local, _, _ := strings.Cut(to, "@")
		kept, err := e.store.ReplyKey(ctx, strings.TrimPrefix(local, "reply+"))
		require.NoError(t, err)
		require.NotNil(t, kept)
		assert.Equal(t, notify.ReplyKey{Key: kept.Key, User: e.carol.ID, Room: e.room, Thread: root.ID, CreatedAt: kept.CreatedAt}, *kept)

		e.clock.Advance(time.Hour)
		second, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: notifytest.Secret, ReplyDomain: replyDomain,
			Now: e.clock.Now}, e.store, e.store)
		require.NoError(t, err)
		again, err := second.ReplyAddress(ctx, e.carol.ID, e.room, root.ID)
		require.NoError(t, err)
		assert.Equal(t, to, again)
		after, err := e.store.ReplyKey(ctx, kept.Key)
		require.NoError(t, err)
		assert.Equal(t, kept, after, "recorded once")

		step, err := e.send(t, carolEmail, []string{again}, email(carolEmail, again, "c1@acme.example", "Yes."))
		require.NoError(t, err, step)
		assert.Len(t, e.replies(t, root.ID), 1)
	})
}

// TestLongAddress: an address of the first form, 74 octets before the
// "@" (the room's and the thread's ids and a MAC), mailed before the
// short keys, is still read, in any case.
func TestLongAddress(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		root := e.post(t, alice, room.MessageDraft{Body: "Ready, @Carol Buyer?"})
		to := longAddress(e.carol.ID, e.room, root.ID)
		step, err := e.send(t, carolEmail, []string{strings.ToUpper(to)}, email(carolEmail, to, "c1@acme.example", "Yes, from an old email."))
		require.NoError(t, err, step)
		rs := e.replies(t, root.ID)
		require.Len(t, rs, 1)
		assert.Equal(t, "Yes, from an old email.", rs[0].Body)
		assert.Equal(t, e.carol.ID, rs[0].Author)
	})
}

// longAddress is user's reply address for thread in roomID as notifiers
// made them first: the room's id, the thread's and an HMAC-SHA256 of the
// user, the room and the thread truncated to 80 bits, under a key derived
// from the server's secret, in lower-case base32.
func longAddress(user, roomID, thread string) string {
	b32 := base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	rb, err := b32.DecodeString(strings.TrimPrefix(roomID, "r_"))
	if err != nil {
		panic(err)
	}
	tb, err := b32.DecodeString(strings.TrimPrefix(thread, "m_"))
	if err != nil {
		panic(err)
	}
	derive := hmac.New(sha256.New, notifytest.Secret)
	derive.Write([]byte("dealroom email reply"))
	mac := hmac.New(sha256.New, derive.Sum(nil))
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write(rb)
	mac.Write(tb)
	raw := append(append(rb, tb...), mac.Sum(nil)[:10]...)
	return "reply+" + b32.EncodeToString(raw) + "@" + replyDomain
}

// TestCloseBeforeServe: a server closed before it serves (a start that
// failed later) serves nothing and lets its Serve return.
func TestCloseBeforeServe(t *testing.T) {
	st := stores["bolt"](t)
	n, err := notify.New(notify.Config{PublicURL: notifytest.PublicURL, Secret: notifytest.Secret, ReplyDomain: replyDomain}, st, st)
	require.NoError(t, err)
	srv, err := replymail.New(replymail.Config{Domain: replyDomain, Addresses: n, Service: &room.Service{Store: st}})
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, srv.Serve(l))
	_, err = net.Dial("tcp", l.Addr().String())
	assert.Error(t, err, "the listener is closed")
}
