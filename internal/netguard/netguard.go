// Package netguard makes the HTTP client of requests to addresses that
// users supply (Web Push endpoints, webhooks): a guard against server-side
// request forgery. The URL must be https (http only when allowed), and the
// connection is refused when the address it is about to reach, after DNS
// resolution, is not a public unicast one: loopback, private, link-local
// (cloud metadata at 169.254.169.254), unspecified, multicast, broadcast,
// shared (100.64.0.0/10) and reserved ranges, in IPv4 and IPv6, IPv4-mapped
// IPv6 included. The check is made by the dialer on the address it
// connects to, so a name that resolves to a public address when the URL is
// checked and to a private one when it is dialled (DNS rebinding) is
// refused too. An allow-list of addresses or ranges lifts the refusal for
// them: a push service on the company network, or a test's server on
// 127.0.0.1.
package netguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"dealroom"
)

// Config says what a Guard lets through. The zero value is the strict
// guard: https to public addresses only, 10 s per request.
type Config struct {
	// Allow lists the addresses and ranges reached even though they are
	// not public (ParseAllow reads "127.0.0.1,10.0.0.0/8").
	Allow []netip.Prefix
	// AllowHTTP lets plain http URLs through (tests, a service on a
	// private network); https is required otherwise.
	AllowHTTP bool
	// Timeout bounds a whole request, its answer's body included (10 s).
	Timeout time.Duration
	// TLS, when set, is the client's TLS configuration (a test's
	// certificate authority); nil: the system's roots.
	TLS *tls.Config
}

// Guard checks outbound URLs and addresses, and makes the client that
// applies its checks.
type Guard struct {
	cfg Config
}

// New returns the guard of cfg.
func New(cfg Config) *Guard {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Guard{cfg: cfg}
}

// ParseAllow reads a comma-separated list of IP addresses and CIDR ranges
// ("127.0.0.1, 10.0.0.0/8, ::1").
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if a, err := netip.ParseAddr(p); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or a CIDR range", p)
		}
		if pr.Addr().Is4In6() {
			pr = netip.PrefixFrom(pr.Addr().Unmap(), max(pr.Bits()-96, 0))
		}
		out = append(out, pr.Masked())
	}
	return out, nil
}

// ErrRefused is wrapped by the errors of a refused URL or address.
var ErrRefused = errors.New("netguard: destination refused")

// notPublic lists the ranges that are not public unicast addresses,
// besides what netip.Addr's predicates say (loopback, private, link-local,
// multicast, unspecified).
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // shared address space (carrier NAT)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),       // NAT64: may lead to any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local NAT64
	netip.MustParsePrefix("100::/64"),           // discard
	netip.MustParsePrefix("2001::/23"),          // IETF protocol assignments (Teredo included)
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("2002::/16"),          // 6to4: may lead to any IPv4 address
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
	netip.MustParsePrefix("::/128"),             // unspecified
	netip.MustParsePrefix("::ffff:0:0/96"),      // IPv4-mapped, when not unmapped
	netip.MustParsePrefix("::ffff:0:0:0/96"),    // IPv4-translated
	netip.MustParsePrefix("fc00::/7"),           // unique local
	netip.MustParsePrefix("fe80::/10"),          // link-local
	netip.MustParsePrefix("ff00::/8"),           // multicast
	netip.MustParsePrefix("127.0.0.0/8"),        // loopback
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, cloud metadata
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
}

// Public reports whether a is a public unicast address.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Allowed reports whether the guard lets a connection to a through: a
// public address, or one the allow-list names.
func (g *Guard) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	if Public(a) {
		return true
	}
	for _, p := range g.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckURL refuses (EINVALID, field) a URL the guard would not request: not
// absolute, not https (or http when allowed), with user information, or
// naming as its host an address the guard refuses. A host name is checked
// when it is dialled.
func (g *Guard) CheckURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, dealroom.Invalid(field, "must be an absolute URL")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !g.cfg.AllowHTTP) {
		return nil, dealroom.Invalid(field, "must be an https URL")
	}
	if u.User != nil {
		return nil, dealroom.Invalid(field, "must not carry a user name or password")
	}
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !g.Allowed(a) {
		return nil, dealroom.Invalid(field, "must not point at a private, loopback or reserved address")
	}
	return u, nil
}

// control is the dialer's check of the address it is about to connect to.
func (g *Guard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrRefused, address, err)
	}
	if !strings.HasPrefix(network, "tcp") || !g.Allowed(ap.Addr()) {
		return fmt.Errorf("%w: %s %s is not a public address", ErrRefused, network, address)
	}
	return nil
}

// Client returns an HTTP client whose every connection is checked: a
// refused address fails the request with an error wrapping ErrRefused.
// It uses no proxy from the environment (the proxy, not the destination,
// would be checked), follows no redirect (the answer is the redirect
// itself), and bounds each request by the guard's timeout. The scheme is
// checked on every request too.
func (g *Guard) Client() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, ControlContext: g.control}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       g.cfg.TLS,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: g.cfg.Timeout,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: schemeCheck{g: g, next: t},
		Timeout:   g.cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// schemeCheck refuses a request whose URL the guard refuses, before it is
// dialled.
type schemeCheck struct {
	g    *Guard
	next http.RoundTripper
}

func (s schemeCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, err := s.g.CheckURL("url", r.URL.String()); err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s", ErrRefused, dealroom.ErrorMessage(err))
	}
	return s.next.RoundTrip(r)
}
