package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A message of two parts, as Dealroom's mail package writes one.
const rawMail = "From: Dealroom <rooms@seller.example>\r\n" +
	"To: ana@customer.example\r\n" +
	"Subject: =?UTF-8?q?Your_sign-in_link?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"http://deals.example/sign-in/email#code=3Dabc\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"\r\n" +
	"<a href=\"http://deals.example/\">Sign in</a>\r\n" +
	"--b1--\r\n"

// TestRun: the process prints where its SMTP server and its mailbox are;
// a message sent to the one shows in the other, for its recipient only;
// and it stops when its context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, w) }()
	lines := bufio.NewReader(out)
	line, err := lines.ReadString('\n')
	require.NoError(t, err)
	smtpURL, ok := strings.CutPrefix(strings.TrimSpace(line), "smtp ")
	require.True(t, ok, line)
	line, err = lines.ReadString('\n')
	require.NoError(t, err)
	mailboxURL, ok := strings.CutPrefix(strings.TrimSpace(line), "mailbox ")
	require.True(t, ok, line)
	u, err := url.Parse(smtpURL)
	require.NoError(t, err)
	assert.Equal(t, "smtp", u.Scheme)

	assert.Empty(t, messages(t, mailboxURL), "nothing received yet")
	c, err := smtp.Dial(u.Host)
	require.NoError(t, err)
	require.NoError(t, c.SendMail("rooms@seller.example", []string{"Ana@Customer.example", "bo@customer.example"}, strings.NewReader(rawMail)))
	require.NoError(t, c.SendMail("rooms@seller.example", []string{"bo@customer.example"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")))
	require.NoError(t, c.Quit())

	all := messages(t, mailboxURL)
	require.Len(t, all, 2)
	assert.Equal(t, "hello", all[1].Text, "oldest first")
	ana := messages(t, mailboxURL+"?to="+url.QueryEscape("ana@customer.example"))
	require.Len(t, ana, 1, "the recipient in any case")
	assert.Equal(t, message{
		From: "rooms@seller.example", To: []string{"Ana@Customer.example", "bo@customer.example"},
		Subject: "Your sign-in link", Text: "http://deals.example/sign-in/email#code=abc",
		HTML: `<a href="http://deals.example/">Sign in</a>`,
	}, ana[0], "the parts decoded")
	assert.Empty(t, messages(t, mailboxURL+"?to=cy%40customer.example"))

	cancel()
	require.NoError(t, <-done)
	_, err = smtp.Dial(u.Host)
	assert.Error(t, err, "the SMTP server stopped")
	_, err = http.Get(mailboxURL)
	assert.Error(t, err, "the mailbox stopped")
}

// TestRunPortTaken: an address that cannot be had is an error.
func TestRunPortTaken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, w) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	u, err := url.Parse(strings.TrimPrefix(strings.TrimSpace(line), "smtp "))
	require.NoError(t, err)
	go io.Copy(io.Discard, out)
	assert.ErrorContains(t, run(context.Background(), []string{"-smtp", u.Host}, io.Discard), "SMTP server")
	assert.ErrorContains(t, run(context.Background(), []string{"-http", u.Host}, io.Discard), "mailbox")
	cancel()
	require.NoError(t, <-done)
}

// messages gets the mailbox at u.
func messages(t *testing.T, u string) []message {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var ms []message
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ms))
	return ms
}
