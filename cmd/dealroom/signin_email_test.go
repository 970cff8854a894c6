package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
	"dealroom/room"
)

// TestE2ESignInByEmailLink: the server binary, configured with a real SMTP
// server, sends a customer a sign-in link (and nobody else, with the same
// answer), and the link's code signs a new browser in once.
func TestE2ESignInByEmailLink(t *testing.T) {
	t.Parallel()
	smtp := testenv.StartSMTP(t, testenv.SMTPOptions{})
	p := startProcess(t, buildBinary(t), t.TempDir(), "DEALROOM_SMTP_URL="+smtp.URL(),
		"DEALROOM_MAIL_FROM=Dealroom <rooms@seller.example>", "DEALROOM_PUBLIC_URL=http://deals.example")
	c := newClient(p)
	at := tokenFor(t, alice)
	roomID := field(t, c.must(t, 201, "POST", "/api/v1/rooms", at, map[string]any{"name": "Acme", "company": "Acme"}, ""), "id")
	code := field(t, c.must(t, 201, "POST", "/api/v1/rooms/"+roomID+"/invites", at, map[string]any{"email": "cat@acme.example"}, ""), "code")
	c.must(t, 200, "POST", "/api/v1/invites/"+code+"/accept", "", map[string]any{"name": "Cat Customer", "email": "cat@acme.example"}, "")

	b := newSignInBrowser(t, p.URL)
	resp, body := b.do("GET", "/api/v1/auth", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"email_links":true`)

	jsonBody := map[string]string{"Content-Type": "application/json"}
	var answers []string
	for _, email := range []string{"nobody@acme.example", "cat@acme.example"} {
		resp, body = b.do("POST", "/api/v1/auth/email-link", `{"email": "`+email+`"}`, jsonBody)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
		answers = append(answers, body)
	}
	assert.Equal(t, answers[0], answers[1], "the same answer for a member and a stranger")
	require.Eventually(t, func() bool { return len(smtp.Messages()) >= 1 }, 30*time.Second, 10*time.Millisecond)
	mails := smtp.Messages()
	require.Len(t, mails, 1, "one mail, to the member (links go out in the order asked)")
	assert.Equal(t, []string{"cat@acme.example"}, mails[0].To)
	m := regexp.MustCompile(`http://deals\.example/sign-in/email#code=([A-Za-z0-9_-]+)`).FindStringSubmatch(mails[0].Text)
	require.NotNil(t, m, mails[0].Text)

	resp, body = b.do("POST", "/api/v1/auth/email-link/redeem", `{"code": "`+m[1]+`"}`, jsonBody)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	resp, body = b.do("GET", "/api/v1/me", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var me struct {
		UserID string `json:"user_id"`
		Kind   string `json:"kind"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, room.CustomerID("cat@acme.example"), me.UserID)
	assert.Equal(t, "customer", me.Kind)
	resp, body = b.do("GET", "/api/v1/rooms", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, roomID)

	other := newSignInBrowser(t, p.URL)
	resp, _ = other.do("POST", "/api/v1/auth/email-link/redeem", `{"code": "`+m[1]+`"}`, jsonBody)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a link works once")
	resp, _ = other.do("GET", "/api/v1/me", "", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
