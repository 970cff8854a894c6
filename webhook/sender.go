package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"dealroom"
	"dealroom/consume"
	"dealroom/room"
)

// Consumer returns the event log's consumer that records a delivery of
// each event for every endpoint that wants it (paused ones included: their
// deliveries wait). While no endpoint is configured it is idle: the
// runner reads no event for it (on MongoDB a query per room and pass),
// and a first endpoint gets the events from about its creation on.
func (s *Service) Consumer() consume.Consumer {
	return consume.Consumer{Name: Consumer, Handle: s.handle, Idle: func(ctx context.Context) bool {
		eps, err := s.Store.Endpoints(ctx)
		return err == nil && len(eps) == 0
	}}
}

func (s *Service) handle(ctx context.Context, ev room.Event) error {
	eps, err := s.Store.Endpoints(ctx)
	if err != nil || len(eps) == 0 {
		return err
	}
	var tags []string
	tagsRead := false
	var ds []Delivery
	now := s.now()
	for _, e := range eps {
		if len(e.RoomTags) > 0 && !tagsRead {
			r, err := s.Rooms.Room(ctx, ev.RoomID)
			if err != nil {
				return err
			}
			if r != nil {
				tags = r.Tags
			}
			tagsRead = true
		}
		if e.Wants(ev, tags) {
			ds = append(ds, newDelivery(e.ID, ev, now))
		}
	}
	if len(ds) == 0 {
		return nil
	}
	_, err = s.Store.AddDeliveries(ctx, ds)
	return err
}

// Sender posts pending deliveries. Run its Send as a job of the
// consume.Runner whose consumer records them, under the same lease. The
// zero values of its fields mean the defaults.
type Sender struct {
	Service *Service
	// Client posts; its guard's client (netguard.Guard.Client) in
	// production, so that no delivery reaches a refused address.
	Client *http.Client
	// Timeout bounds one attempt, the answer included (10 s).
	Timeout time.Duration
	// Backoff is the wait after a first failed attempt (5 s), doubled
	// after each further one up to an hour, then jittered to between half
	// and all of it.
	Backoff time.Duration
	// GiveUpAfter is how long a delivery fails before its endpoint is
	// paused (24 hours).
	GiveUpAfter time.Duration
	// Parallel bounds the endpoints posted to at once (4).
	Parallel int
	// Jitter returns a number in [0, 1) (math/rand/v2 when nil).
	Jitter func() float64
	Log    *slog.Logger
	// Paused, when set, is told of an endpoint the sender paused (to tell
	// its admins).
	Paused func(ctx context.Context, e Endpoint)
	// Observe, when set, is told each attempt's outcome (Delivered or
	// Pending), for metrics.
	Observe func(state string)
}

// Defaults of Sender, and bounds.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultBackoff     = 5 * time.Second
	DefaultGiveUpAfter = 24 * time.Hour
	maxBackoff         = time.Hour
	pendingPage        = 200
	// MaxAnswer bounds the bytes of an answer read (then dropped).
	MaxAnswer   = 4 << 10
	saveTimeout = 5 * time.Second
	maxError    = 500 // bytes of an attempt's error kept in the log
)

func (s *Sender) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Send posts what is due of every endpoint that is not paused, the
// endpoints in parallel, and returns the first store error.
func (s *Sender) Send(ctx context.Context) error {
	eps, err := s.Service.Store.Endpoints(ctx)
	if err != nil {
		return err
	}
	n := s.Parallel
	if n <= 0 {
		n = 4
	}
	sem := make(chan struct{}, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, e := range eps {
		if e.Paused {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.sendEndpoint(ctx, e); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// sendEndpoint walks the endpoint's pending deliveries in (room, seq)
// order and posts each room's in order, up to the first that fails or is
// not due; the rest of that room is skipped with one seek, so a pass
// reads a page per room that waits, however many deliveries wait in it.
func (s *Sender) sendEndpoint(ctx context.Context, e Endpoint) error {
	afterRoom, afterSeq := "", int64(0)
	for {
		page, err := s.Service.Store.PendingDeliveries(ctx, e.ID, afterRoom, afterSeq, pendingPage)
		if err != nil {
			return err
		}
		skipped := false
		for _, d := range page {
			afterRoom, afterSeq = d.RoomID, d.Seq
			if ctx.Err() != nil {
				return nil
			}
			now := s.Service.now()
			passed := false
			if !d.Due.After(now) || e.ResumedAt.After(d.At) {
				var paused bool
				passed, paused, err = s.attempt(ctx, &e, d)
				if err != nil {
					return err
				}
				if paused {
					return nil
				}
			}
			if !passed {
				// The room's later deliveries wait for this one.
				afterSeq, skipped = pastRoom, true
				break
			}
		}
		if !skipped && len(page) < pendingPage {
			return nil
		}
	}
}

// pastRoom as a seq to continue after is beyond every seq of its room
// (the stores look from afterSeq+1 on).
const pastRoom = math.MaxInt64 - 1

// attempt posts d once and saves the outcome; after a day of failures it
// pauses the endpoint.
func (s *Sender) attempt(ctx context.Context, e *Endpoint, d Delivery) (passed, paused bool, err error) {
	evs, err := room.Redactor{Store: s.Service.Rooms}.Events(ctx, d.RoomID, d.Seq-1, 1, false)
	if err != nil {
		return false, false, err
	}
	start := s.Service.now()
	var status int
	if len(evs) == 0 || evs[0].ID != d.EventID {
		err = fmt.Errorf("event %d of room %s is not in the log", d.Seq, d.RoomID)
	} else {
		status, err = s.post(ctx, *e, d.ID, evs[0])
	}
	if err != nil && ctx.Err() != nil {
		return false, false, nil // shutting down: the attempt does not count
	}
	now := s.Service.now()
	d.Attempts++
	d.At, d.Status, d.LatencyMS = now, status, now.Sub(start).Milliseconds()
	if err == nil {
		d.State, d.DeliveredAt, d.LastError, d.FailingSince = Delivered, now, "", time.Time{}
	} else {
		if d.FailingSince.IsZero() {
			d.FailingSince = now
		}
		d.LastError = err.Error()
		if len(d.LastError) > maxError {
			d.LastError = strings.ToValidUTF8(d.LastError[:maxError], "") + "…"
		}
		d.Due = now.Add(s.backoff(d.Attempts))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	if serr := s.Service.Store.SaveDelivery(sctx, d); serr != nil {
		if dealroom.ErrorCode(serr) == dealroom.ENOTFOUND {
			return false, true, nil // the endpoint was deleted meanwhile
		}
		return false, false, serr
	}
	if s.Observe != nil {
		s.Observe(d.State)
	}
	if err == nil {
		return true, false, nil
	}
	since := d.FailingSince
	if e.ResumedAt.After(since) {
		since = e.ResumedAt
	}
	s.log().Info("a webhook delivery failed", "endpoint", e.ID, "host", hostOf(e.URL), "delivery", d.ID,
		"room", d.RoomID, "seq", d.Seq, "attempts", d.Attempts, "due", d.Due, "err", err)
	if now.Sub(since) < s.giveUpAfter() {
		return false, false, nil
	}
	reason := fmt.Sprintf("deliveries failed since %s: %s", since.UTC().Format(time.RFC3339), d.LastError)
	pe, uerr := s.Service.Store.UpdateEndpoint(sctx, e.ID, func(x *Endpoint) error {
		if !x.Paused {
			x.Paused, x.PausedAt, x.PausedReason, x.UpdatedAt = true, now, reason, now
		}
		return nil
	})
	if uerr != nil {
		if dealroom.ErrorCode(uerr) == dealroom.ENOTFOUND {
			return false, true, nil
		}
		return false, false, uerr
	}
	*e = pe
	s.log().Warn("a webhook endpoint was paused: its deliveries failed for too long; an admin resumes it",
		"endpoint", e.ID, "host", hostOf(e.URL), "created_by", e.CreatedBy, "reason", reason)
	if s.Paused != nil {
		s.Paused(ctx, pe)
	}
	return false, true, nil
}

// post sends ev to the endpoint once and returns the answer's status; an
// error for no answer or one that is not 2xx.
func (s *Sender) post(ctx context.Context, e Endpoint, id string, ev room.Event) (int, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	ts := s.Service.now()
	sig, err := Sign(e.Secret, id, ts, body)
	if err != nil {
		return 0, err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Dealroom-Webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	res, err := s.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, MaxAnswer))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("the endpoint answered %d", res.StatusCode)
	}
	return res.StatusCode, nil
}

func (s *Sender) giveUpAfter() time.Duration {
	if s.GiveUpAfter > 0 {
		return s.GiveUpAfter
	}
	return DefaultGiveUpAfter
}

// backoff is the wait after the attempts-th failed attempt: doubling from
// Backoff up to an hour, jittered to between half and all of it, so that
// the retries of many deliveries spread out.
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
	d = min(d, maxBackoff)
	j := s.Jitter
	if j == nil {
		j = rand.Float64
	}
	return d/2 + time.Duration(j()*float64(d/2))
}
