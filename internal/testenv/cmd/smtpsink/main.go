// Command smtpsink runs the tests' SMTP server (testenv.ListenSMTP:
// github.com/emersion/go-smtp, without TLS or AUTH) as a process of its
// own, for tests that are not Go tests: the browser tests
// (frontend/e2e/run.sh) start it, then a dealroom server whose
// DEALROOM_SMTP_URL points at it, and read the mail that server sent from
// the process's mailbox, a small HTTP endpoint.
//
//	smtpsink -smtp 127.0.0.1:0 -http 127.0.0.1:0
//
// Once both listen it prints two lines on stdout:
//
//	smtp smtp://127.0.0.1:PORT
//	mailbox http://127.0.0.1:PORT/messages
//
// GET on the mailbox answers the messages accepted so far, oldest first,
// as a JSON array of {"from", "to", "subject", "text", "html"} (the parts
// decoded, "error" when a message could not be read back); ?to=ADDRESS
// keeps those whose envelope names that recipient (in any case). A message
// is there before the SMTP server answers the end of its data. It runs
// until interrupted (SIGINT or SIGTERM), keeping every message in memory.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"dealroom/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "smtpsink:", err)
		os.Exit(1)
	}
}

// run serves the SMTP server and its mailbox until ctx ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("smtpsink", flag.ContinueOnError)
	smtpAddr := fs.String("smtp", "127.0.0.1:0", "address of the SMTP server (port 0: a free one)")
	httpAddr := fs.String("http", "127.0.0.1:0", "address of the mailbox, over HTTP (port 0: a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := testenv.ListenSMTP(*smtpAddr, testenv.SMTPOptions{})
	if err != nil {
		return err
	}
	defer srv.Stop()
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("mailbox: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /messages", mailbox(srv))
	web := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = web.Serve(ln)
	}()
	defer func() {
		_ = web.Close()
		<-done
	}()
	if _, err := fmt.Fprintf(stdout, "smtp %s\nmailbox http://%s/messages\n", srv.URL(), ln.Addr()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// message is a received message as the mailbox shows it.
type message struct {
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	HTML    string   `json:"html"`
	// Error says why the message could not be read back.
	Error string `json:"error,omitempty"`
}

// mailbox answers the messages srv received, those to ?to= alone if
// given.
func mailbox(srv *testenv.SMTPServer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		out := []message{}
		for _, m := range srv.Messages() {
			if to != "" && !slices.ContainsFunc(m.To, func(rcpt string) bool { return strings.EqualFold(rcpt, to) }) {
				continue
			}
			msg := message{From: m.From, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML}
			if m.ParseErr != nil {
				msg.Error = m.ParseErr.Error()
			}
			out = append(out, msg)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(out)
	})
}
