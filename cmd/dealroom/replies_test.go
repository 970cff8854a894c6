package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// TestRepliesByEmail: with -smtp-listen and -reply-domain, the email of a
// mention carries a reply address, and the answer sent to the server's
// own SMTP listener, over STARTTLS with the configured certificate, is in
// the thread, as its author, without the quote.
func TestRepliesByEmail(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	certFile, keyFile, roots := selfSignedFiles(t)
	e := env{"DEALROOM_ADDR": "127.0.0.1:0", "DEALROOM_DATA_DIR": t.TempDir(), "DEALROOM_JWT_SECRET": processSecret,
		"DEALROOM_SMTP_LISTEN": "127.0.0.1:0", "DEALROOM_REPLY_DOMAIN": "Reply.Deals.Example.com",
		"DEALROOM_SMTP_TLS_CERT": certFile, "DEALROOM_SMTP_TLS_KEY": keyFile}
	for _, kv := range mailEnv(srv) {
		k, v, _ := strings.Cut(kv, "=")
		e[k] = v
	}
	cfg, err := parseConfig("dealroom serve", nil, e.get, &bytes.Buffer{})
	require.NoError(t, err)
	app := &App{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, app.Open(context.Background()))
	t.Cleanup(func() { app.Close() })
	require.NotEmpty(t, app.SMTPAddr())

	c := &client{base: "http://" + app.Addr(), http: &http.Client{Timeout: 30 * time.Second}}
	ta, tb := tokenFor(t, alice), tokenFor(t, bob)
	c.must(t, http.StatusOK, http.MethodGet, "/api/v1/me", tb, nil, "") // the server learns Bob's address
	roomID := field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", ta,
		map[string]any{"name": "Acme renewal", "company": "Acme Corp"}, ""), "id")
	rp := "/api/v1/rooms/" + roomID
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/members", ta,
		map[string]any{"user_id": "bob", "name": bob.Name, "kind": "staff", "access": "write"}, "")
	root := field(t, c.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", ta,
		map[string]any{"body": "@Bob Engineer can you check their SSO setup?"}, ""), "id")

	var to string
	require.Eventually(t, func() bool {
		for _, m := range srv.Messages() {
			if m.To[0] == bob.Email {
				to = strings.Trim(m.Header.Get("Reply-To"), "<>")
				return true
			}
		}
		return false
	}, 60*time.Second, 10*time.Millisecond)
	assert.Regexp(t, `^reply\+[0-9a-z]+@reply\.deals\.example\.com$`, to)

	msg := "From: Bob Engineer <bob@seller.example>\r\nTo: " + to + "\r\nSubject: Re: Alice Rep mentioned you\r\n" +
		"Message-ID: <r1@seller.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Checked: they use Okta.\r\n\r\nOn Mon, Alice Rep <" + to + "> wrote:\r\n> @Bob Engineer can you check their SSO setup?\r\n"
	sc, err := smtp.Dial(app.SMTPAddr())
	require.NoError(t, err)
	defer sc.Close()
	ok, _ := sc.Extension("STARTTLS")
	require.True(t, ok, "STARTTLS is offered")
	require.NoError(t, sc.StartTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}))
	require.NoError(t, sc.Mail(bob.Email))
	require.NoError(t, sc.Rcpt(to))
	w, err := sc.Data()
	require.NoError(t, err)
	_, err = io.WriteString(w, msg)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, sc.Quit())

	var page struct {
		Items []struct{ Body, Author, ParentID string } `json:"items"`
	}
	require.NoError(t, json.Unmarshal(c.must(t, http.StatusOK, http.MethodGet, rp+"/messages?parent_id="+root, ta, nil, ""), &page))
	require.Len(t, page.Items, 1)
	assert.Equal(t, "Checked: they use Okta.", page.Items[0].Body)
	assert.Equal(t, "bob", page.Items[0].Author)
}

// TestRepliesConfig: the listener needs its domain and the notifications
// whose reply addresses it takes; bad values are named.
func TestRepliesConfig(t *testing.T) {
	mail := env{"DEALROOM_SMTP_URL": "smtp://127.0.0.1:2525", "DEALROOM_MAIL_FROM": "rooms@deals.example.com",
		"DEALROOM_PUBLIC_URL": "https://deals.example.com"}
	with := func(kv ...string) env {
		e := env{}
		for k, v := range mail {
			e[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	for _, tt := range []struct {
		name string
		env  env
		want string
	}{
		{"listen without a domain", with("DEALROOM_SMTP_LISTEN", ":2525"), "-smtp-listen (DEALROOM_SMTP_LISTEN) needs -reply-domain"},
		{"listen without mail", env{"DEALROOM_SMTP_LISTEN": ":2525", "DEALROOM_REPLY_DOMAIN": "reply.example.com"}, "needs -reply-domain (DEALROOM_REPLY_DOMAIN) and email notifications"},
		{"listen with notifications off", with("DEALROOM_SMTP_LISTEN", ":2525", "DEALROOM_REPLY_DOMAIN", "reply.example.com", "DEALROOM_NOTIFY_EMAIL", "off"), "email notifications"},
		{"a bad domain", with("DEALROOM_REPLY_DOMAIN", "reply_example"), "-reply-domain / DEALROOM_REPLY_DOMAIN: must be a domain name"},
		{"a certificate without its key", with("DEALROOM_SMTP_LISTEN", ":2525", "DEALROOM_REPLY_DOMAIN", "reply.example.com", "DEALROOM_SMTP_TLS_CERT", "/etc/cert.pem"), "go together"},
		{"a certificate without a listener", with("DEALROOM_SMTP_TLS_CERT", "/etc/cert.pem", "DEALROOM_SMTP_TLS_KEY", "/etc/key.pem"), "with -smtp-listen"},
		{"a bad address", with("DEALROOM_SMTP_LISTEN", "2525", "DEALROOM_REPLY_DOMAIN", "reply.example.com"), "-smtp-listen / DEALROOM_SMTP_LISTEN: must be a listen address"},
	} {
		_, err := parseConfig("dealroom serve", nil, tt.env.get, &bytes.Buffer{})
		if assert.Error(t, err, tt.name) {
			assert.Contains(t, err.Error(), tt.want, tt.name)
		}
	}
	c, err := parseConfig("dealroom serve", nil, with("DEALROOM_SMTP_LISTEN", ":2525", "DEALROOM_REPLY_DOMAIN", "Reply.Example.com").get, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "reply.example.com", c.ReplyDomain)
	assert.Equal(t, ":2525", c.SMTPListen)
}

// selfSignedFiles writes a certificate for 127.0.0.1 and its key into PEM
// files, and returns them with a pool that trusts the certificate.
func selfSignedFiles(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dealroom replies test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
