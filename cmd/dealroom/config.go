package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"dealroom"
	"dealroom/internal/gcfloor"
	"dealroom/internal/netguard"
	"dealroom/mail"
	"dealroom/oidc"
	"dealroom/push"
)

// Config is everything the server reads at start, from flags and
// DEALROOM_* environment variables (a flag wins over the environment).
type Config struct {
	Addr         string
	DataDir      string
	JWTSecret    string
	JWTPublicKey string // path to a PEM file
	JWTIssuer    string
	JWTAudience  string
	MongoURI     string
	RedisURL     string
	// TLS to Redis (rediss:// URLs): authorities trusted besides the
	// system's, and a client certificate for a Redis that asks for one.
	RedisCAFile    string
	RedisTLSCert   string
	RedisTLSKey    string
	PublicURL      string
	TrustedProxies []*net.IPNet
	MaxUploadBytes int64
	RateLimit      float64
	CustomerTTL    time.Duration
	// Browser sessions' lifetimes without use and in all (api.Config).
	SessionIdle    time.Duration
	SessionMax     time.Duration
	LogFormat      string // text or json
	LogLevel       string
	AllowedOrigins []string
	WSPing         time.Duration
	PresenceTTL    time.Duration
	// MongoHeadBatch makes the hub's head checks on MongoDB one find for
	// many rooms (hub.HeadsStore) instead of one per room.
	MongoHeadBatch bool
	// GCHeadroom is how far the heap may grow between two collections at
	// least (gcfloor); 0: the runtime's own pacing. GCHeadroomSet tells
	// that it was configured.
	GCHeadroom    uint64
	GCHeadroomSet bool
	// The websocket's caps (ws.Config).
	WSMaxSockets        int
	WSMaxSocketsPerUser int
	WSMaxSubscriptions  int
	WSFrameRate         float64
	// Staff sign-in with the company's identity provider (oidc.Config):
	// none without OIDCIssuer.
	OIDCIssuer         string
	OIDCClientID       string
	OIDCClientSecret   string
	OIDCName           string
	OIDCAllowedDomains []string
	OIDCScopes         []string
	OIDCGroupsClaim    string
	OIDCManagerGroups  []string
	OIDCAdminGroups    []string
	// Outgoing email (mail.Config): none without SMTPURL.
	SMTPURL    string
	SMTPCAFile string
	MailFrom   string
	MailRate   float64
	// NotifyEmail: email people at once of mentions and assignments, when
	// mail and the public URL are configured.
	NotifyEmail bool
	// NotifyDelay is how long a notification waits before it is sent (0:
	// at once): nothing is mailed for what the person saw in the room
	// meanwhile, and what comes for them in a room by then goes in one
	// message.
	NotifyDelay time.Duration
	// DigestHour is the hour (UTC) at which the day's and, on Mondays,
	// the week's digests are made.
	DigestHour int
	// Replies by email (package replymail): ReplyDomain puts a reply
	// address on notifications about a thread; SMTPListen is where this
	// instance takes the replies ("": it does not).
	ReplyDomain string
	SMTPListen  string
	// SMTPTLSCert and SMTPTLSKey are the PEM files of the certificate the
	// listener offers with STARTTLS ("": none).
	SMTPTLSCert string
	SMTPTLSKey  string
	// Web Push (push.go): on with the public URL; the VAPID key pair is
	// made once and kept in the store unless VAPIDPrivateKey is set.
	NotifyPush      bool
	VAPIDPrivateKey string
	VAPIDSubject    string
	// OutboundAllow lists the private addresses the server may post to
	// (netguard): none by default.
	OutboundAllow []netip.Prefix
	// OutboundCAFile is a PEM file of certificate authorities trusted
	// for those requests besides the system's.
	OutboundCAFile string
}

// setting is one configuration value: its flag, its variable and its help.
type setting struct {
	flag, env, def, help string
	secret               bool
	set                  func(string) error
}

func (c *Config) settings() []setting {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	duration := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute {
				return errors.New("must be a duration of a minute or more, like 12h")
			}
			*p = d
			return nil
		}
	}
	return []setting{
		{"addr", "DEALROOM_ADDR", ":8080", "listen address", false, str(&c.Addr)},
		{"data-dir", "DEALROOM_DATA_DIR", "dealroom-data", "directory of the embedded store, attachments and the generated JWT secret", false, str(&c.DataDir)},
		{"jwt-secret", "DEALROOM_JWT_SECRET", "", "HS256 secret of at least 32 bytes (default: generated once and kept in the data directory)", true, str(&c.JWTSecret)},
		{"jwt-public-key", "DEALROOM_JWT_PUBLIC_KEY", "", "PEM file of an RSA or ECDSA P-256 public key: also accept RS256/ES256 tokens of an identity provider", false, str(&c.JWTPublicKey)},
		{"jwt-issuer", "DEALROOM_JWT_ISSUER", "", "required iss of tokens, written into issued tokens", false, str(&c.JWTIssuer)},
		{"jwt-audience", "DEALROOM_JWT_AUDIENCE", "", "required aud of tokens, written into issued tokens", false, str(&c.JWTAudience)},
		{"mongo-uri", "DEALROOM_MONGO_URI", "", "MongoDB URI (with DEALROOM_REDIS_URL: the multi-instance deployment)", true, str(&c.MongoURI)},
		{"redis-url", "DEALROOM_REDIS_URL", "", "Redis URL for fan-out and presence across instances", true, str(&c.RedisURL)},
		{"redis-ca-file", "DEALROOM_REDIS_CA_FILE", "", "PEM file of certificate authorities trusted for the certificates of Redis (rediss:// URLs), besides the system's (a company CA)", false, str(&c.RedisCAFile)},
		{"redis-tls-cert", "DEALROOM_REDIS_TLS_CERT", "", "PEM file of the client certificate (and chain) shown to a Redis that asks for one (rediss:// URLs; Redis asks by default), read again when it changes", false, str(&c.RedisTLSCert)},
		{"redis-tls-key", "DEALROOM_REDIS_TLS_KEY", "", "PEM file of the private key of -redis-tls-cert", false, str(&c.RedisTLSKey)},
		{"public-url", "DEALROOM_PUBLIC_URL", "", "address people use to reach the server, for invite links (default: from each request)", false, str(&c.PublicURL)},
		{"trusted-proxies", "DEALROOM_TRUSTED_PROXIES", "", "comma-separated addresses or CIDR ranges (like 10.0.0.0/8) of the reverse proxies in front of the server: only a request from one of them has its client's address taken from X-Forwarded-For (default: none, the header is ignored)", false, func(v string) error {
			c.TrustedProxies = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				if ip := net.ParseIP(p); ip != nil {
					bits := 8 * len(ip.To16())
					if ip.To4() != nil {
						ip, bits = ip.To4(), 32
					}
					c.TrustedProxies = append(c.TrustedProxies, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
					continue
				}
				_, n, err := net.ParseCIDR(p)
				if err != nil {
					return fmt.Errorf("%q is not an IP address or a CIDR range", p)
				}
				c.TrustedProxies = append(c.TrustedProxies, n)
			}
			return nil
		}},
		{"max-upload-bytes", "DEALROOM_MAX_UPLOAD_BYTES", "26214400", "largest attachment accepted", false, func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return errors.New("must be a positive number of bytes")
			}
			c.MaxUploadBytes = n
			return nil
		}},
		{"rate-limit", "DEALROOM_RATE_LIMIT", "50", "sustained requests per second per user (bursts of twice that)", false, func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1e9) { // NaN and infinity too
				return errors.New("must be a positive number")
			}
			c.RateLimit = f
			return nil
		}},
		{"customer-token-ttl", "DEALROOM_CUSTOMER_TOKEN_TTL", "720h", "lifetime of the token a customer gets on accepting an invite", false, func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute {
				return errors.New("must be a duration of a minute or more, like 720h")
			}
			c.CustomerTTL = d
			return nil
		}},
		{"session-idle", "DEALROOM_SESSION_IDLE", "168h", "how long a browser session lasts without use", false, duration(&c.SessionIdle)},
		{"session-max", "DEALROOM_SESSION_MAX", "720h", "how long a browser session lasts at most, used or not", false, duration(&c.SessionMax)},
		{"allowed-origins", "DEALROOM_ALLOWED_ORIGINS", "", "comma-separated host patterns (like app.example.com or *.example.com) of other sites whose pages may open the websocket; the server's own origin always may", false, func(v string) error {
			c.AllowedOrigins = nil
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.AllowedOrigins = append(c.AllowedOrigins, o)
				}
			}
			return nil
		}},
		{"ws-ping", "DEALROOM_WS_PING", "15s", "websocket keep-alive interval; a device that misses a ping's answer for as long is disconnected and leaves the room's presence", false, func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
				return errors.New("must be a duration between 100ms and 10m, like 15s")
			}
			c.WSPing = d
			return nil
		}},
		{"presence-ttl", "DEALROOM_PRESENCE_TTL", "30s", "how long an instance's presence announcement holds without renewal: the people of an instance that dies leave within it", false, func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > 10*time.Minute {
				return errors.New("must be a duration between 1s and 10m, like 30s")
			}
			c.PresenceTTL = d
			return nil
		}},
		{"mongo-head-batch", "DEALROOM_MONGO_HEAD_BATCH", "false", "on MongoDB, check the heads of up to 500 followed rooms in one find (an $or of exact {room_id, seq} keys) instead of one find per room; off by default until measured on a real MongoDB (mongo-java-server scans the collection for it)", false, func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.MongoHeadBatch = b
			return nil
		}},
		{"gc-headroom", "DEALROOM_GC_HEADROOM", "", "how far the heap may grow between two garbage collections at least, like 128MiB (0: Go's own pacing, GOGC); a small heap then collects less often (default: 128MiB, or an eighth of the cgroup's memory limit or GOMEMLIMIT when less; off when GOGC is set)", false, func(v string) error {
			if v == "" {
				return nil
			}
			n, ok := gcfloor.ParseSize(v)
			if !ok || n > 64<<30 {
				return errors.New("must be a size up to 64GiB, like 128MiB, or 0")
			}
			c.GCHeadroom, c.GCHeadroomSet = n, true
			return nil
		}},
		{"ws-max-sockets", "DEALROOM_WS_MAX_SOCKETS", "10000", "most websockets this instance holds; one more is refused with 503 before the upgrade", false, positiveInt(&c.WSMaxSockets)},
		{"ws-max-sockets-per-user", "DEALROOM_WS_MAX_SOCKETS_PER_USER", "20", "most websockets one user holds on this instance; one more is refused with 429 before the upgrade", false, positiveInt(&c.WSMaxSocketsPerUser)},
		{"ws-max-subscriptions", "DEALROOM_WS_MAX_SUBSCRIPTIONS", "100", "most rooms one websocket follows; a subscribe past it is refused with rate_limited", false, positiveInt(&c.WSMaxSubscriptions)},
		{"ws-frame-rate", "DEALROOM_WS_FRAME_RATE", "20", "sustained frames per second a websocket may send of each kind (subscribe, unsubscribe, presence, ping, command), bursts of twice that; more are refused with rate_limited", false, func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1e6) { // NaN too
				return errors.New("must be a positive number of frames per second")
			}
			c.WSFrameRate = f
			return nil
		}},
		{"oidc-issuer", "DEALROOM_OIDC_ISSUER", "", "issuer URL of the company's OpenID Connect provider, for staff sign-in (like https://accounts.google.com or https://login.example.com/realms/sales); needs -public-url, registered at the provider with the callback PUBLIC_URL/api/v1/auth/oidc/callback (default: no provider; tokens are pasted, the development path)", false, str(&c.OIDCIssuer)},
		{"oidc-client-id", "DEALROOM_OIDC_CLIENT_ID", "", "this server's client id at the provider", false, str(&c.OIDCClientID)},
		{"oidc-client-secret", "DEALROOM_OIDC_CLIENT_SECRET", "", "this server's client secret at the provider", true, str(&c.OIDCClientSecret)},
		{"oidc-name", "DEALROOM_OIDC_NAME", "your company account", `the provider's name on the sign-in button ("Sign in with Okta")`, false, str(&c.OIDCName)},
		{"oidc-allowed-domains", "DEALROOM_OIDC_ALLOWED_DOMAINS", "", "comma-separated email domains whose people may sign in (like example.com); required with -oidc-issuer", false, list(&c.OIDCAllowedDomains)},
		{"oidc-scopes", "DEALROOM_OIDC_SCOPES", "", "comma-separated scopes to ask for besides openid, email and profile (like groups, for a provider that sends the groups claim only then)", false, list(&c.OIDCScopes)},
		{"oidc-groups-claim", "DEALROOM_OIDC_GROUPS_CLAIM", "groups", "the ID token's claim that lists the person's groups", false, str(&c.OIDCGroupsClaim)},
		{"oidc-manager-groups", "DEALROOM_OIDC_MANAGER_GROUPS", "", "comma-separated groups whose members sign in as managers", false, list(&c.OIDCManagerGroups)},
		{"oidc-admin-groups", "DEALROOM_OIDC_ADMIN_GROUPS", "", "comma-separated groups whose members sign in as admins (everyone else signs in as a rep)", false, list(&c.OIDCAdminGroups)},
		{"smtp-url", "DEALROOM_SMTP_URL", "", "mail server for customers' sign-in links and notifications: smtp://user:pass@host:587 (STARTTLS when the server offers it; add ?tls=required to insist) or smtps://user:pass@host:465 (TLS from the start) (default: no email)", true, str(&c.SMTPURL)},
		{"smtp-ca-file", "DEALROOM_SMTP_CA_FILE", "", "PEM file of certificate authorities trusted for the mail server's certificate, besides the system's (a company CA)", false, str(&c.SMTPCAFile)},
		{"mail-from", "DEALROOM_MAIL_FROM", "", `sender of the server's email, like "Dealroom <rooms@example.com>" (required with DEALROOM_SMTP_URL)`, false, str(&c.MailFrom)},
		{"mail-rate", "DEALROOM_MAIL_RATE", "5", "most messages per second the server sends, all together, evenly spaced", false, func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1e4) { // NaN too
				return errors.New("must be a positive number of messages per second, at most 10000")
			}
			c.MailRate = f
			return nil
		}},
		{"notify-email", "DEALROOM_NOTIFY_EMAIL", "on", "email people at once when they are mentioned or assigned a step (on or off); needs -smtp-url, -mail-from and -public-url", false, func(v string) error {
			if v != "on" && v != "off" {
				return errors.New(`must be "on" or "off"`)
			}
			c.NotifyEmail = v == "on"
			return nil
		}},
		{"notify-delay", "DEALROOM_NOTIFY_DELAY", "2m", "how long a notification email waits: not sent if the person saw the item in the room meanwhile, and sent with the others of the room due by then (0s to 1h)", false, func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Hour {
				return errors.New("must be a duration from 0s to 1h, like 2m")
			}
			c.NotifyDelay = d
			return nil
		}},
		{"digest-hour", "DEALROOM_DIGEST_HOUR", "8", "the hour (UTC, 0 to 23) at which the digest emails of the day before (and, on Mondays, of the week before) are sent", false, func(v string) error {
			h, err := strconv.Atoi(v)
			if err != nil || h < 0 || h > 23 {
				return errors.New("must be an hour from 0 to 23")
			}
			c.DigestHour = h
			return nil
		}},
		{"reply-domain", "DEALROOM_REPLY_DOMAIN", "", "domain of reply addresses, whose MX record points at the -smtp-listen listeners (like reply.deals.example.com): an email about a thread then carries a Reply-To address there, signed for its recipient, and the answer is posted into the thread (default: no replies by email)", false, func(v string) error {
			v = strings.ToLower(strings.TrimSpace(v))
			if v != "" && !domainRE.MatchString(v) {
				return errors.New("must be a domain name, like reply.deals.example.com")
			}
			c.ReplyDomain = v
			return nil
		}},
		{"smtp-listen", "DEALROOM_SMTP_LISTEN", "", "address of this instance's SMTP server for replies by email, like :25 or 127.0.0.1:2525 behind a mail relay; needs -reply-domain and email notifications (default: none)", false, func(v string) error {
			if v != "" {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return errors.New("must be a listen address, like :25 or 127.0.0.1:2525")
				}
			}
			c.SMTPListen = v
			return nil
		}},
		{"smtp-tls-cert", "DEALROOM_SMTP_TLS_CERT", "", "PEM file of the certificate (and its chain) that the -smtp-listen server offers with STARTTLS, read again when it changes (default: no STARTTLS)", false, str(&c.SMTPTLSCert)},
		{"smtp-tls-key", "DEALROOM_SMTP_TLS_KEY", "", "PEM file of the private key of -smtp-tls-cert", false, str(&c.SMTPTLSKey)},
		{"notify-push", "DEALROOM_NOTIFY_PUSH", "on", "push the same notifications as instant email to the devices people turned them on for (Web Push, on or off); needs -public-url", false, func(v string) error {
			if v != "on" && v != "off" {
				return errors.New(`must be "on" or "off"`)
			}
			c.NotifyPush = v == "on"
			return nil
		}},
		{"vapid-private-key", "DEALROOM_VAPID_PRIVATE_KEY", "", "the VAPID private key of Web Push, base64url of 32 bytes (default: generated once and kept in the store, the same for every instance)", true, func(v string) error {
			if v != "" {
				if _, err := push.KeysOf(v); err != nil {
					return errors.New(dealroom.ErrorMessage(err))
				}
			}
			c.VAPIDPrivateKey = v
			return nil
		}},
		{"vapid-subject", "DEALROOM_VAPID_SUBJECT", "", "who push services may contact about this server's pushes: a mailto: or https: URI, like mailto:ops@example.com (default: the public URL when it is https, else mailto:webpush@ and its host)", false, func(v string) error {
			if v != "" && !strings.HasPrefix(v, "mailto:") && !strings.HasPrefix(v, "https://") {
				return errors.New("must be a mailto: or https: URI")
			}
			c.VAPIDSubject = v
			return nil
		}},
		{"outbound-allow", "DEALROOM_OUTBOUND_ALLOW", "", "comma-separated private addresses or CIDR ranges (like 10.0.0.0/8) the server may post to (push services at people's request); only public addresses are reached otherwise, always over https (default: none)", false, func(v string) error {
			p, err := netguard.ParseAllow(v)
			c.OutboundAllow = p
			return err
		}},
		{"outbound-ca-file", "DEALROOM_OUTBOUND_CA_FILE", "", "PEM file of certificate authorities trusted for the server's outbound requests (push services), besides the system's (a company CA)", false, str(&c.OutboundCAFile)},
		{"log-format", "DEALROOM_LOG_FORMAT", "text", "log format: text or json", false, func(v string) error {
			if v != "text" && v != "json" {
				return errors.New(`must be "text" or "json"`)
			}
			c.LogFormat = v
			return nil
		}},
		{"log-level", "DEALROOM_LOG_LEVEL", "info", "log level: debug, info, warn or error", false, func(v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return errors.New("must be debug, info, warn or error")
		}},
	}
}

// positiveInt sets *p from a whole number of 1 or more (at most a million).
func positiveInt(p *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return errors.New("must be a whole number from 1 to 1000000")
		}
		*p = n
		return nil
	}
}

// parseConfig reads flags from args over the environment over defaults.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := map[string]*string{}
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" && !s.secret {
			def = v
		}
		// A secret's value from the environment is not shown as the
		// flag's default in -h and usage output.
		values[s.flag] = fs.String(s.flag, def, s.help+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range c.settings() {
		if v := getenv(s.env); s.secret && v != "" && !given[s.flag] {
			*values[s.flag] = v
		}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range c.settings() {
		if err := s.set(*values[s.flag]); err != nil {
			return c, fmt.Errorf("-%s / %s: %w", s.flag, s.env, err)
		}
	}
	if c.JWTPublicKey != "" && c.JWTAudience == "" {
		return c, errors.New("-jwt-public-key needs -jwt-audience (DEALROOM_JWT_AUDIENCE), the client id this server has at the identity provider: " +
			"without one, tokens the provider issued for any other application would be accepted")
	}
	if (c.MongoURI == "") != (c.RedisURL == "") {
		return c, errors.New("set both DEALROOM_MONGO_URI and DEALROOM_REDIS_URL for the multi-instance deployment, or neither for the embedded one")
	}
	if _, err := c.openMail(); err != nil {
		return c, err
	}
	if _, err := c.redisTLS(); err != nil {
		return c, err
	}
	if err := c.checkOIDC(); err != nil {
		return c, err
	}
	if c.SMTPListen != "" && (c.ReplyDomain == "" || !c.NotifyEmail || c.SMTPURL == "" || c.PublicURL == "") {
		return c, errors.New("-smtp-listen (DEALROOM_SMTP_LISTEN) needs -reply-domain (DEALROOM_REPLY_DOMAIN) and email notifications: " +
			"-smtp-url, -mail-from, -public-url and -notify-email on")
	}
	if (c.SMTPTLSCert == "") != (c.SMTPTLSKey == "") || (c.SMTPTLSCert != "" && c.SMTPListen == "") {
		return c, errors.New("-smtp-tls-cert (DEALROOM_SMTP_TLS_CERT) and -smtp-tls-key (DEALROOM_SMTP_TLS_KEY) go together, with -smtp-listen")
	}
	return c, nil
}

// domainRE matches a domain name of two labels or more.
var domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkOIDC checks the identity provider's settings as far as they can be
// without asking the provider (App.Open does, at start).
func (c Config) checkOIDC() error {
	if c.OIDCIssuer == "" {
		if c.OIDCClientID != "" || c.OIDCClientSecret != "" || len(c.OIDCAllowedDomains) > 0 {
			return errors.New("-oidc-client-id, -oidc-client-secret and -oidc-allowed-domains need -oidc-issuer (DEALROOM_OIDC_ISSUER)")
		}
		return nil
	}
	var missing []string
	for _, m := range []struct {
		name string
		ok   bool
	}{{"-oidc-client-id (DEALROOM_OIDC_CLIENT_ID)", c.OIDCClientID != ""},
		{"-oidc-client-secret (DEALROOM_OIDC_CLIENT_SECRET)", c.OIDCClientSecret != ""},
		{"-oidc-allowed-domains (DEALROOM_OIDC_ALLOWED_DOMAINS)", len(c.OIDCAllowedDomains) > 0},
		{"-public-url (DEALROOM_PUBLIC_URL), the address the provider sends people back to", c.PublicURL != ""}} {
		if !m.ok {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("-oidc-issuer needs %s", strings.Join(missing, ", "))
	}
	return nil
}

// oidcConfig is the relying party's configuration.
func (c Config) oidcConfig() oidc.Config {
	return oidc.Config{Issuer: c.OIDCIssuer, ClientID: c.OIDCClientID, ClientSecret: c.OIDCClientSecret,
		RedirectURL:    strings.TrimRight(c.PublicURL, "/") + "/api/v1/auth/oidc/callback",
		AllowedDomains: c.OIDCAllowedDomains, Scopes: c.OIDCScopes, GroupsClaim: c.OIDCGroupsClaim,
		ManagerGroups: c.OIDCManagerGroups, AdminGroups: c.OIDCAdminGroups}
}

// openMail returns the mail sender of the configuration, nil without
// -smtp-url. It connects to nothing, so parseConfig calls it to check the
// settings at start.
func (c Config) openMail() (mail.Sender, error) {
	if c.SMTPURL == "" {
		return nil, nil
	}
	mc := mail.Config{URL: c.SMTPURL, From: c.MailFrom, Rate: c.MailRate}
	if c.SMTPCAFile != "" {
		var err error
		if mc.RootCAs, err = trusted(c.SMTPCAFile); err != nil {
			return nil, fmt.Errorf("-smtp-ca-file / DEALROOM_SMTP_CA_FILE: %w", err)
		}
	}
	s, err := mail.Open(mc)
	var e *dealroom.Error
	if errors.As(err, &e) {
		switch e.Field {
		case "url":
			return nil, fmt.Errorf("-smtp-url / DEALROOM_SMTP_URL: %s", e.Message)
		case "from":
			return nil, fmt.Errorf("-mail-from / DEALROOM_MAIL_FROM: %s", e.Message)
		}
	}
	return s, err
}

// redisTLS returns the TLS settings for Redis given by -redis-ca-file,
// -redis-tls-cert and -redis-tls-key, nil when none is set. parseConfig
// calls it to check them at start.
func (c Config) redisTLS() (*tls.Config, error) {
	if c.RedisCAFile == "" && c.RedisTLSCert == "" && c.RedisTLSKey == "" {
		return nil, nil
	}
	if c.RedisURL == "" {
		return nil, errors.New("-redis-ca-file, -redis-tls-cert and -redis-tls-key (DEALROOM_REDIS_CA_FILE, ...) are for a Redis: set -redis-url (DEALROOM_REDIS_URL) too")
	}
	if scheme, _, _ := strings.Cut(c.RedisURL, "://"); !strings.HasPrefix(scheme, "rediss") {
		return nil, errors.New("-redis-ca-file, -redis-tls-cert and -redis-tls-key are for TLS to Redis: the Redis URL must then start with rediss://, rediss-cluster:// or rediss-sentinel://")
	}
	if (c.RedisTLSCert == "") != (c.RedisTLSKey == "") {
		return nil, errors.New("-redis-tls-cert (DEALROOM_REDIS_TLS_CERT) and -redis-tls-key (DEALROOM_REDIS_TLS_KEY) go together")
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.RedisCAFile != "" {
		var err error
		if t.RootCAs, err = trusted(c.RedisCAFile); err != nil {
			return nil, fmt.Errorf("-redis-ca-file / DEALROOM_REDIS_CA_FILE: %w", err)
		}
	}
	if c.RedisTLSCert != "" {
		files := &certFiles{cert: c.RedisTLSCert, key: c.RedisTLSKey}
		if _, err := files.get(nil); err != nil {
			return nil, fmt.Errorf("-redis-tls-cert / -redis-tls-key: %w", err)
		}
		t.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return files.get(nil) }
	}
	return t, nil
}

// trusted returns the system's certificate authorities and those of the
// PEM file.
func trusted(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", file)
	}
	return pool, nil
}

// Masked returns the configuration as safe to log: secrets replaced.
func (c Config) Masked() []any {
	var out []any
	vals := map[string]string{
		"addr": c.Addr, "data-dir": c.DataDir, "jwt-secret": c.JWTSecret, "jwt-public-key": c.JWTPublicKey,
		"jwt-issuer": c.JWTIssuer, "jwt-audience": c.JWTAudience, "mongo-uri": c.MongoURI, "redis-url": c.RedisURL,
		"redis-ca-file": c.RedisCAFile, "redis-tls-cert": c.RedisTLSCert, "redis-tls-key": c.RedisTLSKey,
		"public-url": c.PublicURL, "smtp-url": c.SMTPURL, "smtp-ca-file": c.SMTPCAFile, "mail-from": c.MailFrom,
		"reply-domain": c.ReplyDomain, "smtp-listen": c.SMTPListen, "smtp-tls-cert": c.SMTPTLSCert, "smtp-tls-key": c.SMTPTLSKey,
		"oidc-issuer": c.OIDCIssuer, "oidc-client-id": c.OIDCClientID, "oidc-client-secret": c.OIDCClientSecret,
	}
	for _, s := range c.settings() {
		v, ok := vals[s.flag]
		if !ok {
			continue
		}
		switch {
		case s.flag == "smtp-url":
			v = maskPassword(v)
		case s.secret && v != "":
			v = mask(v)
		}
		out = append(out, s.flag, v)
	}
	return out
}

// mask hides a secret; for a URL it keeps the scheme and host, which help
// to debug, and hides the credentials: the user information and the
// values of parameters named like a password (a Redis Sentinel URL gives
// the master's password as a parameter).
func mask(v string) string {
	if i := strings.Index(v, "://"); i >= 0 {
		rest := v[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = "***@" + rest[at+1:]
		}
		if base, query, ok := strings.Cut(rest, "?"); ok {
			params := strings.Split(query, "&")
			for j, p := range params {
				if k, _, ok := strings.Cut(p, "="); ok && strings.Contains(strings.ToLower(k), "password") {
					params[j] = k + "=***"
				}
			}
			rest = base + "?" + strings.Join(params, "&")
		}
		return v[:i+3] + rest
	}
	return "***"
}

// maskPassword hides the password of a URL and keeps the rest, the user
// name included, which helps to debug a refused login. A URL that cannot
// be read is masked whole.
func maskPassword(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return mask(v)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return strings.Replace(u.String(), "%2A%2A%2A@", "***@", 1) // URL escapes the stars
}

// errNoSecret is what existingJWTSecret answers when neither a secret is
// configured nor one kept in the data directory.
var errNoSecret = errors.New("no JWT secret")

// existingJWTSecret returns the configured secret, or the one the server
// keeps in the data directory; it never makes one (errNoSecret).
func (c Config) existingJWTSecret() ([]byte, error) {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret), nil
	}
	b, err := os.ReadFile(filepath.Join(c.DataDir, "jwt-secret"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoSecret
	}
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// jwtSecret returns the configured secret, or the one kept in the data
// directory, made on first use.
func (c Config) jwtSecret() ([]byte, error) {
	if b, err := c.existingJWTSecret(); !errors.Is(err, errNoSecret) {
		return b, err
	}
	path := filepath.Join(c.DataDir, "jwt-secret")
	if c.MongoURI != "" {
		return nil, errors.New("several instances must share one JWT secret: set DEALROOM_JWT_SECRET")
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return c.jwtSecret() // another process made it first
	}
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(secret + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return []byte(secret), err
}

// list sets *p from a comma-separated value, leaving out empty items.
func list(p *[]string) func(string) error {
	return func(v string) error {
		*p = nil
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				*p = append(*p, item)
			}
		}
		return nil
	}
}
