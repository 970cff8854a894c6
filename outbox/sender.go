package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"dealroom"
	"dealroom/mail"
)

// Sender sends due records. Run its Send as a job of the consume.Runner
// that writes the records, so that it holds the same lease: one instance
// sends at a time. The zero values of its durations mean the defaults.
type Sender struct {
	Store Store
	Mail  mail.Sender
	// Backoff is the wait after the first failed attempt (1 minute),
	// doubled after each further one up to an hour.
	Backoff time.Duration
	// GiveUpAfter is how long a record is tried before it is given up
	// (24 hours, from its creation).
	GiveUpAfter time.Duration
	Now         func() time.Time
	Log         *slog.Logger
	// Observe, when set, is told the outcome of every attempt: Sent,
	// Failed (given up) or Pending (to be tried again), for metrics.
	Observe func(state string)
}

// Defaults of Sender.
const (
	DefaultBackoff     = time.Minute
	DefaultGiveUpAfter = 24 * time.Hour
	maxBackoff         = time.Hour
	sendBatch          = 100
	settleTimeout      = 5 * time.Second
)

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Send sends the records due now, a batch at a time, until none is due
// or ctx ends. A record that fails for now is tried again later; one that
// is refused for good, or has failed for GiveUpAfter, is given up.
func (s *Sender) Send(ctx context.Context) error {
	for {
		due, err := s.Store.DueOutbox(ctx, s.now(), sendBatch)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, r := range due {
			if err := ctx.Err(); err != nil {
				return err
			}
			done := s.attempt(ctx, r)
			if err := s.settle(ctx, done); err != nil {
				return err
			}
			if s.Observe != nil && done.Attempts > r.Attempts {
				s.Observe(done.State)
			}
		}
		if len(due) < sendBatch {
			return nil
		}
	}
}

// settle records an attempt's outcome even when ctx ended meanwhile (the
// lease lost, a shutdown): a mail the server took is then marked sent
// rather than sent again.
func (s *Sender) settle(ctx context.Context, r Record) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	return s.Store.SettleOutbox(sctx, r)
}

// attempt sends r once (with the mail sender's own quick retries) and
// returns r with the outcome.
func (s *Sender) attempt(ctx context.Context, r Record) Record {
	err := s.deliver(ctx, r)
	now := s.now()
	r.Attempts++
	switch {
	case err == nil:
		r.State, r.SettledAt, r.LastError = Sent, now, ""
	case ctx.Err() != nil:
		// Shutting down: the attempt does not count.
		r.Attempts--
	case !mail.Temporary(err) || now.Sub(r.CreatedAt) >= s.giveUpAfter():
		r.State, r.SettledAt, r.LastError = Failed, now, err.Error()
		s.log().Warn("a notification was given up", "record", r.ID, "channel", r.Channel, "attempts", r.Attempts, "err", err)
	default:
		r.Due, r.LastError = now.Add(s.backoff(r.Attempts)), err.Error()
		s.log().Info("a notification will be tried again", "record", r.ID, "attempts", r.Attempts, "due", r.Due, "err", err)
	}
	return r
}

func (s *Sender) deliver(ctx context.Context, r Record) error {
	switch r.Channel {
	case Email:
		var m mail.Message
		if err := json.Unmarshal(r.Payload, &m); err != nil {
			return dealroom.Invalid("payload", "record %s: %v", r.ID, err)
		}
		return s.Mail.Send(ctx, m)
	}
	return dealroom.Invalid("channel", "record %s: unknown channel %q", r.ID, r.Channel)
}

func (s *Sender) giveUpAfter() time.Duration {
	if s.GiveUpAfter > 0 {
		return s.GiveUpAfter
	}
	return DefaultGiveUpAfter
}

// backoff is the wait after the attempts-th failed attempt.
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.Backoff
	if d <= 0 {
		d = DefaultBackoff
	}
	for range attempts - 1 {
		if d >= maxBackoff {
			break
		}
		d *= 2
	}
	return min(d, maxBackoff)
}

// String names a record in logs.
func (r Record) String() string { return fmt.Sprintf("%s %s to %s", r.Channel, r.ID, r.Recipient) }
