package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"dealroom/api"
	"dealroom/consume"
	"dealroom/mail"
	"dealroom/room"
	"dealroom/webhook"
)

// deliveriesKeep is how long delivered webhook deliveries stay in the
// delivery log: far longer than an event waits between its handling and
// its cursor's move, so that a repeat finds its delivery and posts
// nothing new.
const deliveriesKeep = 7 * 24 * time.Hour

// openWebhooks starts the webhooks when the store keeps them (both
// stores do): the admins' service, and the runner, under the lease
// "webhooks", that records deliveries from the event log and posts them
// through the outbound guard while this instance holds it. nil and nil
// for a store that keeps none. The runner stops before the store closes.
func (a *App) openWebhooks(cfg Config, store room.Store, metrics *api.Metrics) (*webhook.Service, *consume.Runner, error) {
	ws, ok := store.(webhook.Store)
	cs, ok2 := store.(consume.Store)
	if !ok || !ok2 {
		return nil, nil, nil
	}
	g, err := cfg.outboundGuard()
	if err != nil {
		return nil, nil, err
	}
	svc := &webhook.Service{Store: ws, Rooms: store, Guard: g}
	delivered := metrics.Counter("dealroom_webhooks_delivered_total", "Webhook deliveries the endpoints took (2xx).")
	failed := metrics.Counter("dealroom_webhooks_failed_total", "Webhook delivery attempts that failed and will be tried again.")
	sender := &webhook.Sender{Service: svc, Client: g.Client(), Log: a.Log, Observe: func(state string) {
		if state == webhook.Delivered {
			delivered.Inc()
		} else {
			failed.Inc()
		}
	}}
	sender.Paused = tellPaused(a.mail, cfg.PublicURL, a.Log)
	var swept time.Time
	sweep := func(ctx context.Context) error {
		if time.Since(swept) < 24*time.Hour {
			return nil
		}
		swept = time.Now()
		_, err := ws.SweepDeliveries(ctx, swept.Add(-deliveriesKeep))
		return err
	}
	r := &consume.Runner{Store: cs, Events: store, Lease: webhook.Consumer, Holder: holderName(),
		Consumers: []consume.Consumer{svc.Consumer()}, Jobs: []func(context.Context) error{sender.Send, sweep}, Log: a.Log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	a.closers = append(a.closers, func() error { cancel(); <-done; return nil })
	return svc, r, nil
}

// tellPaused returns the sender's hook that mails the admin who made an
// endpoint when the server pauses it (nothing without mail or an address:
// the log line the sender writes stays).
func tellPaused(m mail.Sender, publicURL string, log *slog.Logger) func(context.Context, webhook.Endpoint) {
	return func(ctx context.Context, e webhook.Endpoint) {
		if m == nil || e.CreatedByEmail == "" {
			return
		}
		where := "the webhooks page"
		if publicURL != "" {
			where = publicURL + "/admin/webhooks"
		}
		msg := mail.Message{To: e.CreatedByEmail, Subject: "Dealroom paused a webhook endpoint",
			Text: fmt.Sprintf("The webhook endpoint %s was paused: %s.\n\nIts events wait, in order, until it is resumed on %s.\n",
				e.URL, e.PausedReason, where)}
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := m.Send(mctx, msg); err != nil {
			log.Warn("mailing the admin of a paused webhook endpoint failed", "endpoint", e.ID, "err", err)
		}
	}
}
