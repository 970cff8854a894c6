package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"dealroom"
	"dealroom/mail"
)

// Sender sends due records. Run its Send as a job of the consume.Runner
// that writes the records, so that it holds the same lease: one instance
// sends at a time. The zero values of its durations mean the defaults;
// without Seen and Combine every record is sent alone.
type Sender struct {
	Store Store
	Mail  mail.Sender
	// Backoff is the wait after the first failed attempt (1 minute),
	// doubled after each further one up to an hour.
	Backoff time.Duration
	// GiveUpAfter is how long a record is tried before it is given up
	// (24 hours, from its creation).
	GiveUpAfter time.Duration
	// Seen, when set, returns the highest seq user has seen in room: a
	// record whose Seq is at or below it is settled Skipped, not sent.
	Seen func(ctx context.Context, room, user string) (int64, error)
	// Combine, when set, makes the one message that carries several email
	// records of one recipient and room, under the Message-ID batch (plus
	// the sender's domain). Records due together go in one message, and
	// so do those of the same recipient and room due within Window after
	// one that is due: they would have been sent soon anyway.
	Combine func(batch string, recs []Record) (mail.Message, error)
	// Push, when set, sends a Push record (to each of the recipient's
	// devices). Its error is temporary when its code is EUNAVAILABLE (or
	// mail.Temporary says so).
	Push func(ctx context.Context, r Record) error
	// Window is how far ahead of its Due a record may go with another one
	// of its recipient and room that is due (0: only records due now).
	Window time.Duration
	Now    func() time.Time
	Log    *slog.Logger
	// Observe, when set, is told the outcome of every attempt: Sent,
	// Failed (given up) or Pending (to be tried again), and of every
	// record Skipped, for metrics.
	Observe func(state string)
}

// Defaults of Sender.
const (
	DefaultBackoff     = time.Minute
	DefaultGiveUpAfter = 24 * time.Hour
	maxBackoff         = time.Hour
	sendBatch          = 100
	settleTimeout      = 5 * time.Second
	// MaxBatch bounds the records in one message; more go in several.
	MaxBatch = 20
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

// Send sends the records due now, a page at a time, until none is due
// or ctx ends. A record that fails for now is tried again later; one that
// is refused for good, or has failed for GiveUpAfter, is given up.
func (s *Sender) Send(ctx context.Context) error {
	for {
		now := s.now()
		page, err := s.Store.DueOutbox(ctx, now.Add(max(s.Window, 0)), sendBatch)
		if err != nil || len(page) == 0 {
			return err
		}
		groups := s.group(page, now, len(page) == sendBatch)
		if len(groups) == 0 {
			return nil
		}
		for _, g := range groups {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := s.sendGroup(ctx, g); err != nil {
				return err
			}
		}
		if len(page) < sendBatch {
			return nil
		}
	}
}

// group splits a page of records into what is sent together, in the
// order of their first record, and keeps the groups with a record due by
// now. A record goes alone when it was tried alone before (its
// Message-ID is its own) or nothing combines records. When the page is
// full, the group of its last record may go on past it: it is left for
// the next page, unless it is the only one.
func (s *Sender) group(page []Record, now time.Time, full bool) [][]Record {
	var keys []string
	byKey := map[string][]Record{}
	ready := map[string]bool{}
	for _, r := range page {
		var k string
		switch {
		case r.Batch != "":
			k = "b\x00" + r.Batch
		case s.Combine == nil || r.Attempts > 0 || r.Channel != Email:
			k = "r\x00" + r.ID
		default:
			k = "g\x00" + r.Recipient + "\x00" + r.RoomID
		}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], r)
		ready[k] = ready[k] || !r.Due.After(now)
	}
	if full && len(keys) > 1 {
		var last string
		r := page[len(page)-1]
		for _, k := range keys {
			if slices.ContainsFunc(byKey[k], func(x Record) bool { return x.ID == r.ID }) {
				last = k
			}
		}
		delete(ready, last)
	}
	var out [][]Record
	for _, k := range keys {
		if ready[k] {
			out = append(out, byKey[k])
		}
	}
	return out
}

// sendGroup sends one group: a message fixed before (Batch) as it was;
// otherwise what the recipient has not seen, alone or in messages of up
// to MaxBatch records.
func (s *Sender) sendGroup(ctx context.Context, g []Record) error {
	if g[0].Batch != "" {
		return s.sendRecords(ctx, g)
	}
	g, err := s.dropSeen(ctx, g)
	if err != nil {
		return err
	}
	for len(g) > 0 {
		n := min(len(g), MaxBatch)
		if err := s.sendRecords(ctx, g[:n]); err != nil {
			return err
		}
		g = g[n:]
	}
	return nil
}

// dropSeen settles Skipped the records of g (one recipient and room)
// whose event the recipient has seen, and returns the others.
func (s *Sender) dropSeen(ctx context.Context, g []Record) ([]Record, error) {
	if s.Seen == nil || !slices.ContainsFunc(g, func(r Record) bool { return r.Seq > 0 }) {
		return g, nil
	}
	seen, err := s.Seen(ctx, g[0].RoomID, g[0].Recipient)
	if err != nil {
		return nil, err
	}
	var keep []Record
	for _, r := range g {
		if r.Seq <= 0 || r.Seq > seen {
			keep = append(keep, r)
			continue
		}
		r.State, r.SettledAt, r.LastError = Skipped, s.now(), ""
		if err := s.settle(ctx, r); err != nil {
			return nil, err
		}
		if s.Observe != nil {
			s.Observe(Skipped)
		}
	}
	return keep, nil
}

// sendRecords sends recs in one message (one record alone: its own) and
// settles them with the outcome, together. Several records are first
// marked with the message's id, together, so that the message stays the
// same until it is settled.
func (s *Sender) sendRecords(ctx context.Context, recs []Record) error {
	if len(recs) > 1 && recs[0].Batch == "" {
		b := BatchKey(recs)
		for i := range recs {
			recs[i].Batch = b
		}
		if err := s.settle(ctx, recs...); err != nil {
			return err
		}
	}
	err := s.deliver(ctx, recs)
	if err != nil && ctx.Err() != nil {
		// Shutting down: the attempt does not count.
		return nil
	}
	done := make([]Record, len(recs))
	for i, r := range recs {
		done[i] = s.outcome(r, err)
	}
	if err := s.settle(ctx, done...); err != nil {
		return err
	}
	if s.Observe != nil {
		for _, r := range done {
			s.Observe(r.State)
		}
	}
	return nil
}

// settle records an attempt's outcome even when ctx ended meanwhile (the
// lease lost, a shutdown): a mail the server took is then marked sent
// rather than sent again.
func (s *Sender) settle(ctx context.Context, rs ...Record) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	return s.Store.SettleOutbox(sctx, rs...)
}

// outcome returns r after an attempt that ended with err.
func (s *Sender) outcome(r Record, err error) Record {
	now := s.now()
	r.Attempts++
	switch {
	case err == nil:
		r.State, r.SettledAt, r.LastError = Sent, now, ""
	case !temporary(err) || now.Sub(r.CreatedAt) >= s.giveUpAfter():
		r.State, r.SettledAt, r.LastError = Failed, now, err.Error()
		s.log().Warn("a notification was given up", "record", r.ID, "channel", r.Channel, "attempts", r.Attempts, "err", err)
	default:
		r.Due, r.LastError = now.Add(s.backoff(r.Attempts)), err.Error()
		s.log().Info("a notification will be tried again", "record", r.ID, "attempts", r.Attempts, "due", r.Due, "err", err)
	}
	return r
}

// deliver sends the message of recs, once (with the mail sender's own
// quick retries).
func (s *Sender) deliver(ctx context.Context, recs []Record) error {
	r := recs[0]
	switch r.Channel {
	case Email:
		if len(recs) > 1 {
			if s.Combine == nil {
				return dealroom.Invalid("payload", "message %s: nothing combines records", r.Batch)
			}
			m, err := s.Combine(r.Batch, recs)
			if err != nil {
				return dealroom.Invalid("payload", "message %s: %v", r.Batch, err)
			}
			return s.Mail.Send(ctx, m)
		}
		var m mail.Message
		if err := json.Unmarshal(r.Payload, &m); err != nil {
			return dealroom.Invalid("payload", "record %s: %v", r.ID, err)
		}
		return s.Mail.Send(ctx, m)
	}
	if r.Channel == Push && s.Push != nil {
		return s.Push(ctx, r)
	}
	return dealroom.Invalid("channel", "record %s: unknown channel %q", r.ID, r.Channel)
}

// temporary reports whether an attempt that failed with err may pass
// later.
func temporary(err error) bool {
	return mail.Temporary(err) || dealroom.ErrorCode(err) == dealroom.EUNAVAILABLE
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
