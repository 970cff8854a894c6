package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/gcfloor"
)

// env is a fake environment for parseConfig and run.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// defaults parses an empty command line in an empty environment.
func defaults(t *testing.T) Config {
	t.Helper()
	var stderr bytes.Buffer
	c, err := parseConfig("dealroom serve", nil, env{}.get, &stderr)
	require.NoError(t, err, "every default is a valid value")
	assert.Empty(t, stderr.String())
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := defaults(t)
	assert.Equal(t, ":8080", c.Addr)
	assert.Equal(t, "dealroom-data", c.DataDir)
	assert.EqualValues(t, 25<<20, c.MaxUploadBytes)
	assert.EqualValues(t, 50, c.RateLimit)
	assert.Equal(t, 720*time.Hour, c.CustomerTTL)
	assert.Equal(t, 7*24*time.Hour, c.SessionIdle)
	assert.Equal(t, 30*24*time.Hour, c.SessionMax)
	assert.Equal(t, "text", c.LogFormat)
	assert.Equal(t, "info", c.LogLevel)
	for name, v := range map[string]string{"jwt secret": c.JWTSecret, "jwt public key": c.JWTPublicKey,
		"issuer": c.JWTIssuer, "audience": c.JWTAudience, "mongo uri": c.MongoURI, "redis url": c.RedisURL,
		"public url": c.PublicURL} {
		assert.Empty(t, v, "%s is unset by default: the embedded deployment needs nothing", name)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	e := env{
		"DEALROOM_ADDR":               "127.0.0.1:9999",
		"DEALROOM_DATA_DIR":           "/var/lib/dealroom",
		"DEALROOM_JWT_SECRET":         "0123456789abcdef0123456789abcdef",
		"DEALROOM_JWT_PUBLIC_KEY":     "/etc/idp.pem",
		"DEALROOM_JWT_ISSUER":         "https://idp.example",
		"DEALROOM_JWT_AUDIENCE":       "dealroom",
		"DEALROOM_MONGO_URI":          "mongodb://mongo:27017/dealroom",
		"DEALROOM_REDIS_URL":          "redis://redis:6379/0",
		"DEALROOM_PUBLIC_URL":         "https://deals.example.com",
		"DEALROOM_MAX_UPLOAD_BYTES":   "1048576",
		"DEALROOM_RATE_LIMIT":         "2.5",
		"DEALROOM_CUSTOMER_TOKEN_TTL": "36h",
		"DEALROOM_SESSION_IDLE":       "12h",
		"DEALROOM_SESSION_MAX":        "336h",
		"DEALROOM_LOG_FORMAT":         "json",
		"DEALROOM_LOG_LEVEL":          "debug",
		"DEALROOM_GC_HEADROOM":        "64MiB",
	}
	want := defaults(t)
	want.GCHeadroom, want.GCHeadroomSet = 64<<20, true
	want.Addr = "127.0.0.1:9999"
	want.DataDir = "/var/lib/dealroom"
	want.JWTSecret = "0123456789abcdef0123456789abcdef"
	want.JWTPublicKey = "/etc/idp.pem"
	want.JWTIssuer = "https://idp.example"
	want.JWTAudience = "dealroom"
	want.MongoURI = "mongodb://mongo:27017/dealroom"
	want.RedisURL = "redis://redis:6379/0"
	want.PublicURL = "https://deals.example.com"
	want.MaxUploadBytes = 1 << 20
	want.RateLimit = 2.5
	want.CustomerTTL = 36 * time.Hour
	want.SessionIdle = 12 * time.Hour
	want.SessionMax = 14 * 24 * time.Hour
	want.LogFormat = "json"
	want.LogLevel = "debug"
	c, err := parseConfig("dealroom serve", nil, e.get, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, want, c)
}

func TestConfigFlagsWinOverEnvironment(t *testing.T) {
	e := env{
		"DEALROOM_ADDR":               "127.0.0.1:1111",
		"DEALROOM_DATA_DIR":           "/from/env",
		"DEALROOM_MAX_UPLOAD_BYTES":   "10",
		"DEALROOM_CUSTOMER_TOKEN_TTL": "not-a-duration", // replaced by the flag, so never read
		"DEALROOM_LOG_LEVEL":          "debug",
	}
	c, err := parseConfig("dealroom serve", []string{
		"-addr", "127.0.0.1:2222",
		"--data-dir=/from/flag",
		"-max-upload-bytes=20",
		"-customer-token-ttl", "2h",
	}, e.get, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:2222", c.Addr)
	assert.Equal(t, "/from/flag", c.DataDir)
	assert.EqualValues(t, 20, c.MaxUploadBytes)
	assert.Equal(t, 2*time.Hour, c.CustomerTTL)
	assert.Equal(t, "debug", c.LogLevel, "a setting without a flag still comes from the environment")
	assert.Equal(t, "text", c.LogFormat, "a setting in neither keeps its default")
}

func TestConfigEmptyEnvironmentValueMeansUnset(t *testing.T) {
	c, err := parseConfig("dealroom serve", nil, env{"DEALROOM_ADDR": "", "DEALROOM_RATE_LIMIT": ""}.get, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, ":8080", c.Addr)
	assert.EqualValues(t, 50, c.RateLimit)
}

func TestConfigTrustedProxies(t *testing.T) {
	c, err := parseConfig("dealroom serve", nil, env{"DEALROOM_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,2001:db8::1"}.get, &bytes.Buffer{})
	require.NoError(t, err)
	var got []string
	for _, n := range c.TrustedProxies {
		got = append(got, n.String())
	}
	assert.Equal(t, []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128"}, got)
	c, err = parseConfig("dealroom serve", nil, env{}.get, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Empty(t, c.TrustedProxies, "none by default")
}

func TestConfigBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  env
		// want are substrings of the error: the setting's flag and
		// variable, and what is wrong.
		want []string
	}{
		{"bad duration in a flag", []string{"-customer-token-ttl", "30 days"}, nil,
			[]string{"-customer-token-ttl", "DEALROOM_CUSTOMER_TOKEN_TTL", "duration"}},
		{"bad duration in the environment", nil, env{"DEALROOM_CUSTOMER_TOKEN_TTL": "forever"},
			[]string{"-customer-token-ttl", "DEALROOM_CUSTOMER_TOKEN_TTL", "duration"}},
		{"duration too short", []string{"-customer-token-ttl=30s"}, nil,
			[]string{"DEALROOM_CUSTOMER_TOKEN_TTL", "a minute or more"}},
		{"session idle too short", []string{"-session-idle=10s"}, nil,
			[]string{"-session-idle", "DEALROOM_SESSION_IDLE", "a minute or more"}},
		{"bad session lifetime", nil, env{"DEALROOM_SESSION_MAX": "a month"},
			[]string{"-session-max", "DEALROOM_SESSION_MAX", "duration"}},
		{"negative upload size", []string{"-max-upload-bytes=-5"}, nil,
			[]string{"-max-upload-bytes", "DEALROOM_MAX_UPLOAD_BYTES", "positive"}},
		{"zero upload size", nil, env{"DEALROOM_MAX_UPLOAD_BYTES": "0"},
			[]string{"DEALROOM_MAX_UPLOAD_BYTES", "positive"}},
		{"upload size with a unit", nil, env{"DEALROOM_MAX_UPLOAD_BYTES": "25MB"},
			[]string{"DEALROOM_MAX_UPLOAD_BYTES", "positive number of bytes"}},
		{"zero rate limit", []string{"-rate-limit=0"}, nil,
			[]string{"-rate-limit", "DEALROOM_RATE_LIMIT", "positive"}},
		{"rate limit not a number", nil, env{"DEALROOM_RATE_LIMIT": "fast"},
			[]string{"DEALROOM_RATE_LIMIT", "positive"}},
		{"rate limit NaN", nil, env{"DEALROOM_RATE_LIMIT": "NaN"},
			[]string{"DEALROOM_RATE_LIMIT", "positive"}},
		{"rate limit infinite", []string{"-rate-limit=+Inf"}, nil,
			[]string{"-rate-limit", "positive"}},
		{"unknown log format", []string{"-log-format=xml"}, nil,
			[]string{"-log-format", "DEALROOM_LOG_FORMAT", `"text" or "json"`}},
		{"unknown log level", nil, env{"DEALROOM_LOG_LEVEL": "trace"},
			[]string{"DEALROOM_LOG_LEVEL", "debug, info, warn or error"}},
		{"MongoDB without Redis", nil, env{"DEALROOM_MONGO_URI": "mongodb://localhost/dealroom"},
			[]string{"DEALROOM_MONGO_URI", "DEALROOM_REDIS_URL", "both"}},
		{"Redis without MongoDB", []string{"-redis-url", "redis://localhost:6379/0"}, nil,
			[]string{"DEALROOM_MONGO_URI", "DEALROOM_REDIS_URL", "both"}},
		{"a Redis CA without Redis", nil, env{"DEALROOM_REDIS_CA_FILE": "ca.pem"},
			[]string{"-redis-ca-file", "-redis-url"}},
		{"a Redis CA for a plain Redis URL", nil, env{"DEALROOM_MONGO_URI": "mongodb://localhost/dealroom", "DEALROOM_REDIS_URL": "redis://localhost:6379/0", "DEALROOM_REDIS_CA_FILE": "ca.pem"},
			[]string{"-redis-ca-file", "rediss://"}},
		{"a Redis client certificate without its key", nil, env{"DEALROOM_MONGO_URI": "mongodb://localhost/dealroom", "DEALROOM_REDIS_URL": "rediss://localhost:6379/0", "DEALROOM_REDIS_TLS_CERT": "client.pem"},
			[]string{"-redis-tls-cert", "-redis-tls-key", "go together"}},
		{"a missing Redis CA file", nil, env{"DEALROOM_MONGO_URI": "mongodb://localhost/dealroom", "DEALROOM_REDIS_URL": "rediss-cluster://localhost:6379", "DEALROOM_REDIS_CA_FILE": "/nonexistent/ca.pem"},
			[]string{"-redis-ca-file", "DEALROOM_REDIS_CA_FILE", "no such file"}},
		{"a Redis CA file without a certificate", []string{"-redis-ca-file", "config_test.go"}, env{"DEALROOM_MONGO_URI": "mongodb://localhost/dealroom", "DEALROOM_REDIS_URL": "rediss://localhost:6379/0"},
			[]string{"-redis-ca-file", "no PEM certificate in config_test.go"}},
		{"a Redis client certificate that cannot be read", nil, env{"DEALROOM_MONGO_URI": "mongodb://localhost/dealroom", "DEALROOM_REDIS_URL": "rediss-sentinel://localhost:26379?master=m", "DEALROOM_REDIS_TLS_CERT": "/nonexistent/c.pem", "DEALROOM_REDIS_TLS_KEY": "/nonexistent/k.pem"},
			[]string{"-redis-tls-cert", "-redis-tls-key", "no such file"}},
		{"a stray argument", []string{"-addr", ":1", "extra"}, nil,
			[]string{`unexpected argument "extra"`}},
		{"an identity provider's key without an audience", []string{"-jwt-public-key", "idp.pem"}, nil,
			[]string{"-jwt-public-key", "-jwt-audience", "DEALROOM_JWT_AUDIENCE"}},
		{"a headroom with a unit of its own", nil, env{"DEALROOM_GC_HEADROOM": "128MB"},
			[]string{"-gc-headroom", "DEALROOM_GC_HEADROOM", "like 128MiB"}},
		{"a headroom too big", []string{"-gc-headroom=65GiB"}, nil,
			[]string{"-gc-headroom", "up to 64GiB"}},
		{"a proxy that is no address", nil, env{"DEALROOM_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"},
			[]string{"-trusted-proxies", "DEALROOM_TRUSTED_PROXIES", `"proxy.internal" is not an IP address or a CIDR range`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("dealroom serve", tt.args, tt.env.get, &bytes.Buffer{})
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigUnknownFlag(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseConfig("dealroom serve", []string{"-port", "80"}, env{}.get, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-port")
	assert.Contains(t, stderr.String(), "-addr", "the usage is shown")
}

// TestGCHeadroom: the default headroom unless configured, none when
// configured 0, and none when GOGC chose the pacing.
func TestGCHeadroom(t *testing.T) {
	c := defaults(t)
	h, on := gcHeadroom(c, env{}.get)
	assert.True(t, on)
	assert.Equal(t, gcfloor.DefaultHeadroom(), h)
	assert.LessOrEqual(t, h, uint64(128<<20))

	c.GCHeadroom, c.GCHeadroomSet = 32<<20, true
	h, on = gcHeadroom(c, env{}.get)
	assert.True(t, on)
	assert.Equal(t, uint64(32<<20), h)

	c.GCHeadroom = 0
	_, on = gcHeadroom(c, env{}.get)
	assert.False(t, on, "0 turns it off")

	c.GCHeadroom = 32 << 20
	_, on = gcHeadroom(c, env{"GOGC": "200"}.get)
	assert.False(t, on, "GOGC set: the operator's pacing")
}

func TestConfigHelpListsEverySetting(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseConfig("dealroom serve", []string{"-h"}, env{}.get, &stderr)
	require.ErrorIs(t, err, flag.ErrHelp)
	var c Config
	for _, s := range c.settings() {
		assert.Contains(t, stderr.String(), "-"+s.flag+" ")
		assert.Contains(t, stderr.String(), "$"+s.env)
	}
}

func TestConfigMasked(t *testing.T) {
	c := Config{Addr: ":8080", DataDir: "d", JWTSecret: "0123456789abcdef0123456789abcdef",
		MongoURI: "mongodb://user:p4ss@mongo:27017/dealroom", RedisURL: "redis://:hunter2@redis:6379/0",
		SMTPURL: "smtp://apikey:sm7p-pass@mail.example.com:587?tls=required"}
	kv := c.Masked()
	logged := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		logged[kv[i].(string)] = kv[i+1]
	}
	assert.Equal(t, ":8080", logged["addr"])
	assert.Equal(t, "***", logged["jwt-secret"])
	assert.Equal(t, "mongodb://***@mongo:27017/dealroom", logged["mongo-uri"])
	assert.Equal(t, "redis://***@redis:6379/0", logged["redis-url"])
	assert.Equal(t, "smtp://apikey:***@mail.example.com:587?tls=required", logged["smtp-url"], "only the password is hidden")
	for _, v := range kv {
		s, _ := v.(string)
		for _, secret := range []string{"0123456789abcdef", "p4ss", "hunter2", "sm7p-pass"} {
			assert.NotContains(t, s, secret)
		}
	}
	sentinel := Config{RedisURL: "redis-sentinel://:s3nt@s1:26379?addr=s2:26379&master=dealroom&password=m4ster&sentinel_password=x"}.Masked()
	for i := 0; i+1 < len(sentinel); i += 2 {
		if sentinel[i] == "redis-url" {
			assert.Equal(t, "redis-sentinel://***@s1:26379?addr=s2:26379&master=dealroom&password=***&sentinel_password=***", sentinel[i+1],
				"a Sentinel URL's passwords are hidden, the parameter's too")
		}
	}
	empty := Config{}.Masked()
	for i := 0; i+1 < len(empty); i += 2 {
		if empty[i] == "jwt-secret" {
			assert.Equal(t, "", empty[i+1], "an unset secret shows as unset, not as ***")
		}
	}
}

func TestDisplayAddr(t *testing.T) {
	for in, want := range map[string]string{
		":8080":          "localhost:8080",
		"0.0.0.0:80":     "localhost:80",
		"[::]:8080":      "localhost:8080",
		"127.0.0.1:9000": "127.0.0.1:9000",
		"not an address": "not an address",
	} {
		assert.Equal(t, want, displayAddr(in), in)
	}
}

// readmeRowRE matches a row of README.md's configuration table:
// | `-flag` | `DEALROOM_X` | default | meaning |
var readmeRowRE = regexp.MustCompile("^\\| `-([a-z0-9-]+)` \\| `(DEALROOM_[A-Z0-9_]+)` \\|([^|]*)\\|")

// TestReadmeListsEverySetting keeps README.md's configuration table true:
// every setting is there with its flag, variable and default, and the
// table names no setting that does not exist.
func TestReadmeListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	type row struct{ flag, def string }
	rows := map[string]row{}
	for _, line := range strings.Split(string(raw), "\n") {
		if m := readmeRowRE.FindStringSubmatch(line); m != nil {
			rows[m[2]] = row{m[1], m[3]}
		}
	}
	require.NotEmpty(t, rows, "README.md has a configuration table")
	var c Config
	for _, s := range c.settings() {
		r, ok := rows[s.env]
		if !assert.True(t, ok, "README.md's configuration table lacks %s", s.env) {
			continue
		}
		assert.Equal(t, s.flag, r.flag, "the flag of %s", s.env)
		if s.def != "" {
			assert.Contains(t, r.def, "`"+s.def+"`", "the default of %s", s.env)
		}
		delete(rows, s.env)
	}
	assert.Empty(t, rows, "README.md documents settings that do not exist")
}
