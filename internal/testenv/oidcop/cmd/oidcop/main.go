// Command oidcop runs the tests' OpenID provider (package oidcop:
// zitadel/oidc's provider with its example login page) as a process of
// its own, for tests that are not Go tests: the browser tests
// (frontend/e2e/run.sh) start it, then a dealroom server whose
// DEALROOM_OIDC_ISSUER points at it, and the browser signs in on the
// provider's own login page.
//
//	oidcop -addr 127.0.0.1:0 -options '{"Users": [...], "Clients": [...]}'
//
// The options are oidcop.Options as JSON. Once it listens it prints one
// line, "issuer http://127.0.0.1:PORT", on stdout; it runs until
// interrupted (SIGINT or SIGTERM).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"dealroom/internal/testenv/oidcop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "oidcop:", err)
		os.Exit(1)
	}
}

// run serves the provider until ctx ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("oidcop", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0: a free one)")
	raw := fs.String("options", "", "the provider's users and clients: oidcop.Options as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var opts oidcop.Options
	if err := json.Unmarshal([]byte(*raw), &opts); err != nil {
		return fmt.Errorf("-options: %w", err)
	}
	if len(opts.Users) == 0 || len(opts.Clients) == 0 {
		return errors.New("-options must name at least one user and one client")
	}
	p, stop, err := oidcop.Listen(*addr, opts)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := fmt.Fprintln(stdout, "issuer", p.Issuer); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
