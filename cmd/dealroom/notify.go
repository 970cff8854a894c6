package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"time"

	"dealroom/api"
	"dealroom/consume"
	"dealroom/notify"
	"dealroom/outbox"
	"dealroom/room"
)

// outboxKeep is how long sent and given-up outbox records are kept: far
// longer than an event can wait between its handling and its cursor's
// move, so that a repeat finds its record and sends nothing new.
const outboxKeep = 7 * 24 * time.Hour

// openNotify starts the email notifications when they are on and mail and
// the public URL are configured: the notifier, and the runner that feeds it
// the event log and sends its outbox while this instance holds the lease
// (one instance of many does). It returns nil and nil when they are off.
// The runner stops before the store closes (closers run last first).
func (a *App) openNotify(cfg Config, store room.Store, metrics *api.Metrics) (*notify.Notifier, *consume.Runner, error) {
	email := cfg.NotifyEmail && a.mail != nil
	pushes, devices, err := a.openPush(cfg, store)
	if err != nil {
		return nil, nil, err
	}
	if !email && pushes == nil || cfg.PublicURL == "" {
		if cfg.NotifyEmail && a.mail != nil {
			a.Log.Info("email notifications are off: they need DEALROOM_PUBLIC_URL for their links")
		}
		return nil, nil, nil
	}
	a.push = devices
	ns, ok := store.(notify.Store)
	if !ok {
		return nil, nil, errors.New("email notifications: the store keeps no outbox")
	}
	secret, err := cfg.jwtSecret()
	if err != nil {
		return nil, nil, err
	}
	n, err := notify.New(notify.Config{PublicURL: cfg.PublicURL, Secret: secret, Delay: cfg.NotifyDelay, DigestHour: cfg.DigestHour,
		ReplyDomain: cfg.ReplyDomain, Log: a.Log,
		Push: pushes, NoEmail: !email}, store, ns)
	if err != nil {
		return nil, nil, err
	}
	sent := metrics.Counter("dealroom_notifications_sent_total", "Notifications (email or push) the mail server or the push services accepted.")
	failed := metrics.Counter("dealroom_notifications_failed_total", "Notifications given up (refused for good, or failing for a day).")
	retried := metrics.Counter("dealroom_notifications_retried_total", "Attempts at notifications that failed for now and will be tried again.")
	skipped := metrics.Counter("dealroom_notifications_skipped_total", "Notifications not sent: the person saw the item in the room before they were due.")
	sender := n.Sender(ns, a.mail)
	sender.Log = a.Log
	sender.Observe = func(state string) {
		switch state {
		case outbox.Sent:
			sent.Inc()
		case outbox.Failed:
			failed.Inc()
		case outbox.Skipped:
			skipped.Inc()
		default:
			retried.Inc()
		}
	}
	var swept time.Time
	sweep := func(ctx context.Context) error {
		if time.Since(swept) < 24*time.Hour {
			return nil
		}
		swept = time.Now()
		_, err := ns.SweepOutbox(ctx, swept.Add(-outboxKeep))
		return err
	}
	r := &consume.Runner{Store: ns, Events: store, Lease: notify.Consumer, Holder: holderName(),
		Consumers: []consume.Consumer{n.Consumer()}, Jobs: []func(context.Context) error{n.Backfill, sender.Send, n.Digests, n.Reminders, sweep}, Log: a.Log}
	if !email {
		r.Jobs = []func(context.Context) error{sender.Send, sweep} // no digest, reminder or backfill without mail
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	a.closers = append(a.closers, func() error { cancel(); <-done; return nil })
	return n, r, nil
}

// holderName names this process among the holders of leases: its host
// and a random part, so that a restarted process is a new holder.
func holderName() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}
