package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
	"dealroom/mail"
)

// TestMailConfigured: with the mail settings the server starts with a
// sender that reaches the configured server (STARTTLS with a password,
// its certificate trusted through DEALROOM_SMTP_CA_FILE), and the start-up
// log shows the mail server without its password.
func TestMailConfigured(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{TLS: testenv.SMTPStartTLS, User: "dealroom", Password: "hunter2-smtp"})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, srv.CertPEM(), 0o600))
	cfg, err := parseConfig("dealroom serve", nil, env{
		"DEALROOM_ADDR":         "127.0.0.1:0",
		"DEALROOM_DATA_DIR":     t.TempDir(),
		"DEALROOM_SMTP_URL":     srv.URL() + "?tls=required",
		"DEALROOM_SMTP_CA_FILE": ca,
		"DEALROOM_MAIL_FROM":    "Dealroom <rooms@example.com>",
		"DEALROOM_MAIL_RATE":    "20",
	}.get, &bytes.Buffer{})
	require.NoError(t, err)
	assert.EqualValues(t, 20, cfg.MailRate)

	var logged syncBuffer
	app := &App{Config: cfg, Log: slog.New(slog.NewTextHandler(&logged, nil))}
	require.NoError(t, app.Open(context.Background()))
	defer app.Close()
	assert.NotContains(t, logged.String(), "hunter2-smtp", "the password is not logged")
	assert.Contains(t, logged.String(), "smtp://dealroom:***@"+srv.Addr(), "the rest of the URL is")

	require.NotNil(t, app.Mail())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, app.Mail().Send(ctx, mail.Message{To: "ana@customer.example", Subject: "Hello", Text: "Hello Ana"}))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS)
	assert.Equal(t, "dealroom", got[0].User)
	assert.Equal(t, "Hello Ana", got[0].Text)
}

func TestMailNotConfigured(t *testing.T) {
	cfg := defaults(t)
	assert.EqualValues(t, 5, cfg.MailRate)
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	app := &App{Config: cfg}
	require.NoError(t, app.Open(context.Background()))
	defer app.Close()
	assert.Nil(t, app.Mail(), "no mail server, no sender")
}

// TestMailBadSettingsStopStart: a bad mail setting stops the server before
// it starts, naming the setting, and never repeats the URL's password.
func TestMailBadSettingsStopStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  env
		want []string
	}{
		{"not an SMTP URL", env{"DEALROOM_SMTP_URL": "https://u:hunter2-smtp@mail.example.com", "DEALROOM_MAIL_FROM": "a@example.com"},
			[]string{"-smtp-url", "DEALROOM_SMTP_URL", "smtp or smtps"}},
		{"an unreadable URL", env{"DEALROOM_SMTP_URL": "smtp://u:hunter2-smtp@mail.example.com:port", "DEALROOM_MAIL_FROM": "a@example.com"},
			[]string{"-smtp-url", "DEALROOM_SMTP_URL"}},
		{"an unknown option", env{"DEALROOM_SMTP_URL": "smtp://u:hunter2-smtp@mail.example.com?tls=maybe", "DEALROOM_MAIL_FROM": "a@example.com"},
			[]string{"-smtp-url", "DEALROOM_SMTP_URL", `"tls"`}},
		{"no sender", env{"DEALROOM_SMTP_URL": "smtp://u:hunter2-smtp@mail.example.com"},
			[]string{"-mail-from", "DEALROOM_MAIL_FROM"}},
		{"a bad sender", env{"DEALROOM_SMTP_URL": "smtp://mail.example.com", "DEALROOM_MAIL_FROM": "Dealroom"},
			[]string{"-mail-from", "DEALROOM_MAIL_FROM", "not an email address"}},
		{"no rate", env{"DEALROOM_MAIL_RATE": "0"},
			[]string{"-mail-rate", "DEALROOM_MAIL_RATE", "positive"}},
		{"a rate that is no number", env{"DEALROOM_MAIL_RATE": "NaN"},
			[]string{"-mail-rate", "DEALROOM_MAIL_RATE", "positive"}},
		{"a missing CA file", env{"DEALROOM_SMTP_URL": "smtp://mail.example.com", "DEALROOM_MAIL_FROM": "a@example.com", "DEALROOM_SMTP_CA_FILE": "/nonexistent/ca.pem"},
			[]string{"-smtp-ca-file", "DEALROOM_SMTP_CA_FILE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["DEALROOM_ADDR"] = "127.0.0.1:0"
			tc.env["DEALROOM_DATA_DIR"] = t.TempDir()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), nil, tc.env.get, &stdout, &stderr)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error()+stdout.String()+stderr.String(), "hunter2-smtp")
			assert.NotContains(t, stdout.String(), "listening")
		})
	}
}
