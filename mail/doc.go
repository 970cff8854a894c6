// Package mail is Dealroom's one way to send email: sign-in links for
// customers and notifications both go through a [Sender].
//
// # One sender, over SMTP
//
// [Open] reads a [Config] (the server's DEALROOM_SMTP_URL, DEALROOM_MAIL_FROM
// and DEALROOM_MAIL_RATE) and returns an [SMTP] sender built on
// github.com/wneessen/go-mail, which writes the message (MIME parts, header
// encoding, RFC 8058 headers) and speaks the client side of SMTP. With no URL
// configured, Open returns a nil Sender and no error: the server runs
// without email, and a caller that would send a sign-in link tells the user
// to ask their contact instead. Callers test for nil; they never call Send on
// a nil Sender.
//
// The URL names the server and how to reach it:
//
//	smtp://user:pass@host:587               STARTTLS when the server offers it
//	smtp://user:pass@host:587?tls=required  STARTTLS or no sending
//	smtps://user:pass@host:465              TLS from the first byte
//
// A password is only ever sent over TLS: the library's mechanism discovery
// uses PLAIN and LOGIN, which carry the password itself, on encrypted
// connections only (challenge-response mechanisms such as SCRAM, which do
// not reveal it, also without), so credentials for a server that offers no
// STARTTLS end in a permanent error, not in the clear.
//
// # Every message on its own connection
//
// Each attempt dials, greets, upgrades to TLS, authenticates, sends one
// message and quits. Dealroom sends a few messages a minute, not a mailing
// list's worth, and a connection of its own per message means no pool, no
// idle connection the server drops, and nothing shared between concurrent
// sends except the rate limiter.
//
// # Rate and retries
//
// All sends share one limiter (Config.Rate messages per second, no bursts):
// every attempt waits its turn before it connects, so a flood of
// notifications cannot get the account throttled by the mail provider.
//
// A failure is temporary ([Temporary]) when the server answered 4xx or could
// not be reached or stopped answering (refused, reset, timed out); anything
// else is permanent: a 5xx answer (wrong password, recipient refused), a
// certificate that does not verify, a message Dealroom should not have made.
// Send retries temporary failures with exponential backoff and full jitter
// while its context allows (Config.Attempts in all), with the same
// Message-ID each time, and returns the last error. A message the server
// took and then could not confirm (the connection dropped after the data) may
// arrive twice; the shared Message-ID lets mail clients show it once.
//
// # Safe headers
//
// Every header value is checked for CR and LF before anything is written, so
// no text from a user (a subject, a name) can add a header or a part.
// Addresses are parsed (net/mail) and written by the library.
//
// # Errors
//
// A message that cannot be sent as given is a dealroom EINVALID error naming
// its field; a temporary failure that outlived the retries is EUNAVAILABLE;
// other failures carry no code (internal: the server's configuration or the
// recipient's server is at fault, and the log says which).
package mail
