package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"dealroom/api"
	"dealroom/internal/netguard"
	"dealroom/notify"
	"dealroom/push"
	"dealroom/room"
)

// openPush makes the push channel of the notifier and what the API serves
// of it, when push is on and the store keeps subscriptions; nil and nil
// otherwise. The key pair is the configured one, or the one kept in the
// store (made by the first instance that starts).
func (a *App) openPush(cfg Config, store room.Store) (*notify.Push, *api.PushDevices, error) {
	if !cfg.NotifyPush || cfg.PublicURL == "" {
		return nil, nil, nil
	}
	ps, ok := store.(push.Store)
	if !ok {
		return nil, nil, errors.New("push notifications: the store keeps no subscriptions")
	}
	var keys push.Keys
	var err error
	if cfg.VAPIDPrivateKey != "" {
		keys, err = push.KeysOf(cfg.VAPIDPrivateKey)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		keys, err = push.LoadKeys(ctx, ps)
		cancel()
	}
	if err != nil {
		return nil, nil, err
	}
	g, err := cfg.outboundGuard()
	if err != nil {
		return nil, nil, err
	}
	c, err := push.NewClient(keys, cfg.vapidSubject(), g, 0)
	if err != nil {
		return nil, nil, err
	}
	return &notify.Push{Client: c, Store: ps}, &api.PushDevices{Store: ps, PublicKey: keys.Public, Guard: g}, nil
}

// vapidSubject is the configured subject, or one made of the public URL.
func (c Config) vapidSubject() string {
	if c.VAPIDSubject != "" {
		return c.VAPIDSubject
	}
	u, err := url.Parse(c.PublicURL)
	if err == nil && u.Scheme == "https" {
		return "https://" + u.Host
	}
	host := "localhost"
	if err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return "mailto:webpush@" + host
}

// outboundGuard is the guard of requests to addresses people give.
func (c Config) outboundGuard() (*netguard.Guard, error) {
	nc := netguard.Config{Allow: c.OutboundAllow}
	if c.OutboundCAFile != "" {
		pem, err := os.ReadFile(c.OutboundCAFile)
		if err != nil {
			return nil, fmt.Errorf("-outbound-ca-file / DEALROOM_OUTBOUND_CA_FILE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-outbound-ca-file / DEALROOM_OUTBOUND_CA_FILE: no PEM certificate in %s", c.OutboundCAFile)
		}
		nc.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return netguard.New(nc), nil
}
