package api_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/api"
	"dealroom/internal/testenv"
	"dealroom/mail"
	"dealroom/room"
	"dealroom/session"
)

const linkPublicURL = "https://deals.example"

// linkRE finds a sign-in link in a mail and its code.
var linkRE = regexp.MustCompile(regexp.QuoteMeta(linkPublicURL) + `/sign-in/email#code=([A-Za-z0-9_-]+)`)

// newLinkServer starts a server that sends sign-in links through a real
// SMTP server, which it returns.
func newLinkServer(t *testing.T) (*testServer, *testenv.SMTPServer) {
	t.Helper()
	smtp := testenv.StartSMTP(t, testenv.SMTPOptions{})
	sender, err := mail.Open(mail.Config{URL: smtp.URL(), From: "Dealroom <rooms@seller.example>", Rate: 100})
	require.NoError(t, err)
	ts := newTestServer(t, withAPI(func(c *api.Config) { c.Mail, c.PublicURL = sender, linkPublicURL }))
	return ts, smtp
}

// inviteCustomer makes a room of the owner's and lets a customer with
// email into it by invite; it returns the room's id.
func inviteCustomer(t *testing.T, ts *testServer, roomID, email, name string) string {
	t.Helper()
	if roomID == "" {
		roomID = ts.must(t, http.StatusCreated, "POST", "/rooms", owner, map[string]any{"name": "Deal", "company": "Acme"}).str(t, "id")
	}
	code := ts.must(t, http.StatusCreated, "POST", "/rooms/"+roomID+"/invites", owner,
		map[string]any{"email": email, "access": "write"}).str(t, "code")
	r := ts.do(t, "POST", "/invites/"+code+"/accept", "", map[string]any{"name": name, "email": email})
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	return roomID
}

// askLink asks for a sign-in link for email and checks the answer, the
// same for every address.
func askLink(t *testing.T, ts *testServer, email string) {
	t.Helper()
	r := ts.do(t, "POST", "/auth/email-link", "", map[string]any{"email": email})
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
	assert.JSONEq(t, `{"sent": true}`, string(r.Body))
}

// waitMails waits until the SMTP server has n messages, and returns them.
// The links go out after the answer, so the test waits for them.
func waitMails(t *testing.T, smtp *testenv.SMTPServer, n int) []testenv.ReceivedMail {
	t.Helper()
	require.Eventually(t, func() bool { return len(smtp.Messages()) >= n }, 30*time.Second, 10*time.Millisecond,
		"%d mails expected", n)
	return smtp.Messages()
}

// codeOf returns the code of the link in m, checking that the text and
// the HTML part carry the same link.
func codeOf(t *testing.T, m testenv.ReceivedMail) string {
	t.Helper()
	require.NoError(t, m.ParseErr)
	text := linkRE.FindStringSubmatch(m.Text)
	require.NotNil(t, text, "the text holds the link: %s", m.Text)
	html := linkRE.FindStringSubmatch(m.HTML)
	require.NotNil(t, html, "the HTML holds the link: %s", m.HTML)
	assert.Equal(t, text[1], html[1])
	return text[1]
}

func redeem(t *testing.T, ts *testServer, code string) response {
	t.Helper()
	return ts.do(t, "POST", "/auth/email-link/redeem", "", map[string]any{"code": code})
}

// TestEmailLinkSignIn: a customer asks for a link, gets one mail with it,
// and redeeming it signs their browser in as them, once.
func TestEmailLinkSignIn(t *testing.T) {
	t.Parallel()
	ts, smtp := newLinkServer(t)
	f := newFixture(t, ts)
	r := ts.do(t, "POST", "/invites/"+f.InviteCode+"/accept", "", map[string]any{"name": "Ivy Invitee", "email": inviteeEmail})
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	other := inviteCustomer(t, ts, "", inviteeEmail, "Ivy Invitee")

	r = ts.do(t, "GET", "/auth", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, true, r.object(t)["email_links"])

	askLink(t, ts, "  "+inviteeEmail)
	got := waitMails(t, smtp, 1)
	require.Len(t, got, 1, "exactly one mail")
	m := got[0]
	assert.Equal(t, []string{inviteeEmail}, m.To)
	assert.Equal(t, "multipart/alternative", m.ContentType)
	assert.Contains(t, m.Text, "Ivy Invitee")
	code := codeOf(t, m)

	r = redeem(t, ts, code)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	b := browserOf(t, r)
	user, _ := r.object(t)["user"].(map[string]any)
	assert.Equal(t, room.CustomerID(inviteeEmail), user["user_id"])
	assert.Equal(t, "customer", user["kind"])
	assert.Equal(t, "Ivy Invitee", user["name"], "the name of their membership")
	assert.Equal(t, inviteeEmail, user["email"])

	// The session shows their rooms, and nothing internal.
	r = b.do(t, ts, false, "GET", "/rooms", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	var rooms []string
	for _, it := range r.items(t) {
		rooms = append(rooms, it["id"].(string))
	}
	assert.ElementsMatch(t, []string{f.Room, other}, rooms)
	assert.Equal(t, http.StatusNotFound, b.do(t, ts, false, "GET", "/rooms/"+f.Room+"/messages/"+f.IMsg, nil).Status,
		"an internal message is hidden from the customer")
	r = b.do(t, ts, false, "GET", "/rooms/"+f.Room+"/messages", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assertCustomerSafe(t, r.Body, "messages through an email link's session")
	// Its writes need the CSRF proof like every session's.
	assert.Equal(t, http.StatusForbidden, b.do(t, ts, false, "POST", "/rooms/"+f.Room+"/messages", map[string]any{"body": "hi"}).Status)
	assert.Equal(t, http.StatusCreated, b.do(t, ts, true, "POST", "/rooms/"+f.Room+"/messages", map[string]any{"body": "hi"}).Status)

	// Once only; a used code and one never issued get the same answer.
	again := redeem(t, ts, code)
	assert.Equal(t, http.StatusUnauthorized, again.Status, "%s", again)
	assertErrorBody(t, again, "")
	unknown := redeem(t, ts, "not-a-code")
	assert.Equal(t, http.StatusUnauthorized, unknown.Status)
	assert.Equal(t, string(again.Body), string(unknown.Body))
}

// TestEmailLinkOnlyToMembers: the answer is the same for any address, but
// only a customer who is in a room gets a mail; a removed one does not.
func TestEmailLinkOnlyToMembers(t *testing.T) {
	t.Parallel()
	ts, smtp := newLinkServer(t)
	roomID := inviteCustomer(t, ts, "", "gone@buyer.example", "Gina Gone")
	inviteCustomer(t, ts, roomID, inviteeEmail, "Ivy Invitee")
	ts.must(t, http.StatusNoContent, "DELETE", "/rooms/"+roomID+"/members/"+room.CustomerID("gone@buyer.example"), owner, nil)

	for _, email := range []string{"nobody@buyer.example", "gone@buyer.example", staffW.Email} {
		askLink(t, ts, email)
	}
	// Links go out in the order asked: once the member's has arrived,
	// the others' would have.
	askLink(t, ts, inviteeEmail)
	got := waitMails(t, smtp, 1)
	require.Len(t, got, 1, "one mail, to the member")
	assert.Equal(t, []string{inviteeEmail}, got[0].To)
}

// TestEmailLinkRedeemAfterRemoval: a link sent to a member who is removed
// from their rooms before they use it opens nothing.
func TestEmailLinkRedeemAfterRemoval(t *testing.T) {
	t.Parallel()
	ts, smtp := newLinkServer(t)
	roomID := inviteCustomer(t, ts, "", inviteeEmail, "Ivy Invitee")
	askLink(t, ts, inviteeEmail)
	code := codeOf(t, waitMails(t, smtp, 1)[0])
	ts.must(t, http.StatusNoContent, "DELETE", "/rooms/"+roomID+"/members/"+room.CustomerID(inviteeEmail), owner, nil)
	r := redeem(t, ts, code)
	assert.Equal(t, http.StatusUnauthorized, r.Status, "%s", r)
	assert.Empty(t, r.Header.Values("Set-Cookie"))
}

// TestEmailLinkExpired: a code past its 15 minutes is refused like an
// unknown one.
func TestEmailLinkExpired(t *testing.T) {
	t.Parallel()
	ts, _ := newLinkServer(t)
	inviteCustomer(t, ts, "", inviteeEmail, "Ivy Invitee")
	now := time.Now()
	added, err := ts.Store.AddTicket(context.Background(), session.Ticket{ID: session.LinkTicket("an-old-code"),
		Subject: inviteeEmail, CreatedAt: now.Add(-16 * time.Minute), ExpiresAt: now.Add(-time.Minute)})
	require.NoError(t, err)
	require.True(t, added)
	r := redeem(t, ts, "an-old-code")
	assert.Equal(t, http.StatusUnauthorized, r.Status, "%s", r)
	assert.Equal(t, string(redeem(t, ts, "never-issued").Body), string(r.Body))
}

// TestEmailLinksPerAddress: past three links in 15 minutes an address
// gets no more mail, and the answer does not change.
func TestEmailLinksPerAddress(t *testing.T) {
	t.Parallel()
	ts, smtp := newLinkServer(t)
	roomID := inviteCustomer(t, ts, "", inviteeEmail, "Ivy Invitee")
	inviteCustomer(t, ts, roomID, "second@buyer.example", "Sid Second")
	for range session.DefaultLinksPerAddress + 2 {
		askLink(t, ts, inviteeEmail)
	}
	askLink(t, ts, "second@buyer.example") // after the others: its mail comes last
	got := waitMails(t, smtp, session.DefaultLinksPerAddress+1)
	require.Len(t, got, session.DefaultLinksPerAddress+1)
	assert.Equal(t, []string{"second@buyer.example"}, got[len(got)-1].To)
	codes := map[string]bool{}
	for _, m := range got[:len(got)-1] {
		assert.Equal(t, []string{inviteeEmail}, m.To)
		codes[codeOf(t, m)] = true
	}
	assert.Len(t, codes, session.DefaultLinksPerAddress, "each link has its own code")
}

// TestEmailLinkRateLimitPerClient: one client address gets ten requests,
// then waits.
func TestEmailLinkRateLimitPerClient(t *testing.T) {
	t.Parallel()
	ts, _ := newLinkServer(t)
	for range 10 {
		askLink(t, ts, "someone@buyer.example")
	}
	r := ts.do(t, "POST", "/auth/email-link", "", map[string]any{"email": "someone@buyer.example"})
	assert.Equal(t, http.StatusTooManyRequests, r.Status, "%s", r)
	assertErrorBody(t, r, "")
	assert.NotEmpty(t, r.Header.Get("Retry-After"))
	// Redeeming has a budget of its own.
	assert.Equal(t, http.StatusUnauthorized, redeem(t, ts, "not-a-code").Status)
}

func TestEmailLinkBadRequests(t *testing.T) {
	t.Parallel()
	ts, smtp := newLinkServer(t)
	for _, email := range []string{"", "not an address", "Ivy <invitee@buyer.example>", "ivy@localhost"} {
		r := ts.do(t, "POST", "/auth/email-link", "", map[string]any{"email": email})
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%q: %s", email, r)
		assertErrorBody(t, r, "email")
	}
	r := ts.do(t, "POST", "/auth/email-link", "", map[string]any{"email": inviteeEmail, "name": "x"})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "an unknown field: %s", r)
	r = ts.do(t, "POST", "/auth/email-link", "", raw(`email=`+inviteeEmail), header{"Content-Type", "application/x-www-form-urlencoded"})
	assert.Equal(t, http.StatusBadRequest, r.Status, "a form post: %s", r)
	r = ts.do(t, "POST", "/auth/email-link/redeem", "", raw(`code=x`), header{"Content-Type", "text/plain"})
	assert.Equal(t, http.StatusBadRequest, r.Status, "%s", r)
	assert.Empty(t, smtp.Messages())
}

// TestEmailLinksNotOffered: without a mail server, or without the public
// URL the links point at, the sign-in page is told so and the routes
// answer 404 with what to do instead.
func TestEmailLinksNotOffered(t *testing.T) {
	t.Parallel()
	smtp := testenv.StartSMTP(t, testenv.SMTPOptions{})
	sender, err := mail.Open(mail.Config{URL: smtp.URL(), From: "rooms@seller.example"})
	require.NoError(t, err)
	for name, cfg := range map[string]func(*api.Config){
		"no mail server": func(c *api.Config) { c.PublicURL = linkPublicURL },
		"no public URL":  func(c *api.Config) { c.Mail = sender },
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, withAPI(cfg))
			inviteCustomer(t, ts, "", inviteeEmail, "Ivy Invitee")
			r := ts.do(t, "GET", "/auth", "", nil)
			require.Equal(t, http.StatusOK, r.Status)
			assert.Equal(t, false, r.object(t)["email_links"])
			for _, path := range []string{"/auth/email-link", "/auth/email-link/redeem"} {
				r = ts.do(t, "POST", path, "", map[string]any{"email": inviteeEmail})
				assert.Equal(t, http.StatusNotFound, r.Status, "%s: %s", path, r)
				assertErrorBody(t, r, "")
				assert.Contains(t, dealroomMessage(t, r), "ask your contact in the room")
			}
		})
	}
	assert.Empty(t, smtp.Messages())
}

// dealroomMessage returns the message of an error body.
func dealroomMessage(t *testing.T, r response) string {
	t.Helper()
	e, _ := r.object(t)["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}
