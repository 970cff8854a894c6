package testenv_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// A message as a mail client writes it: two parts, one quoted-printable,
// one base64, and an encoded subject.
const rawMail = "From: Dealroom <rooms@example.com>\r\n" +
	"To: ana@customer.example\r\n" +
	"Subject: =?UTF-8?q?Acme_=C3=97_Globex?=\r\n" +
	"List-Unsubscribe: <https://x.example/u>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Acme =C3=97 Globex\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+QWNtZTwvcD4=\r\n" +
	"--b1--\r\n"

func TestSMTPStartTLSAuthAndParts(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{TLS: testenv.SMTPStartTLS, User: "u", Password: "p"})
	assert.True(t, strings.HasPrefix(srv.URL(), "smtp://u:p@127.0.0.1:"), srv.URL())
	assert.Contains(t, string(srv.CertPEM()), "BEGIN CERTIFICATE")

	c, err := smtp.DialStartTLS(srv.Addr(), &tls.Config{RootCAs: srv.RootCAs(), ServerName: "127.0.0.1"})
	require.NoError(t, err, "the certificate verifies with RootCAs")
	defer c.Close()
	assert.Error(t, c.Auth(sasl.NewPlainClient("", "u", "wrong")), "a wrong password is refused")
	assert.Error(t, c.SendMail("rooms@example.com", []string{"ana@customer.example"}, strings.NewReader(rawMail)),
		"no mail before AUTH")
	require.NoError(t, c.Auth(sasl.NewPlainClient("", "u", "p")))
	require.NoError(t, c.SendMail("rooms@example.com", []string{"ana@customer.example"}, strings.NewReader(rawMail)))

	got := srv.Messages()
	require.Len(t, got, 1)
	m := got[0]
	require.NoError(t, m.ParseErr)
	assert.Equal(t, "rooms@example.com", m.From)
	assert.Equal(t, []string{"ana@customer.example"}, m.To)
	assert.Equal(t, "u", m.User)
	assert.True(t, m.TLS)
	assert.Equal(t, rawMail, string(m.Raw))
	assert.Equal(t, "Acme × Globex", m.Subject)
	assert.Equal(t, "multipart/alternative", m.ContentType)
	assert.Equal(t, "Acme × Globex", m.Text)
	assert.Equal(t, "<p>Acme</p>", m.HTML)
	assert.Equal(t, "<https://x.example/u>", m.Header.Get("List-Unsubscribe"))
}

func TestSMTPPlainOffersNoAuth(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{User: "u", Password: "p"})
	assert.Nil(t, srv.RootCAs())
	c, err := smtp.Dial(srv.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Hello("localhost"))
	ok, _ := c.Extension("AUTH")
	assert.False(t, ok, "no AUTH without TLS: a password never travels in the clear")
	ok, _ = c.Extension("STARTTLS")
	assert.False(t, ok)
}

func TestSMTPImplicitTLS(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{TLS: testenv.SMTPImplicitTLS})
	assert.True(t, strings.HasPrefix(srv.URL(), "smtps://127.0.0.1:"), srv.URL())
	c, err := smtp.DialTLS(srv.Addr(), &tls.Config{RootCAs: srv.RootCAs(), ServerName: "localhost"})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS)
	assert.Equal(t, "text/plain", got[0].ContentType, "the default of a message without Content-Type")
	assert.Equal(t, "hello", got[0].Text)
}

func TestSMTPFaults(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	send := func() error {
		c, err := smtp.Dial(srv.Addr())
		if err != nil {
			return err
		}
		defer c.Close()
		return c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n"))
	}
	srv.Refuse(1, 451)
	srv.Refuse(1, 550)
	var e *smtp.SMTPError
	require.ErrorAs(t, send(), &e)
	assert.Equal(t, 451, e.Code)
	require.ErrorAs(t, send(), &e)
	assert.Equal(t, 550, e.Code)
	assert.Equal(t, 2, srv.Refused())
	require.NoError(t, send())
	assert.Len(t, srv.Messages(), 1)

	srv.Stop()
	assert.Error(t, send(), "refused while stopped")
	srv.Stop() // twice is fine
	srv.Start()
	require.NoError(t, send(), "back on the same port")
	assert.Len(t, srv.Messages(), 2, "messages survive a restart")
}
