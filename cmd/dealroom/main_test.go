package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/jwtauth"
)

// testSecret is an HS256 secret of the required length.
const testSecret = "cmd-dealroom-test-secret-0123456789abcdef"

// syncBuffer is a bytes.Buffer that a running server and the test may use
// at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mintToken runs `dealroom token args...` and returns the token it prints.
func mintToken(t *testing.T, e env, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"token"}, args...), e.get, &stdout, &stderr)
	require.NoError(t, err, "stderr: %s", stderr.String())
	out := stdout.String()
	require.True(t, strings.HasSuffix(out, "\n"), "the token ends its line")
	tok := strings.TrimSpace(out)
	require.Equal(t, 2, strings.Count(tok, "."), "a JWT has three parts: %q", tok)
	return tok
}

// claimsOf decodes a token's payload without verifying it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(raw, &c))
	return c
}

func TestTokenVerifiesWithConfiguredSecret(t *testing.T) {
	e := env{"DEALROOM_JWT_SECRET": testSecret}
	tok := mintToken(t, e, "--sub", "alice", "--name", "Alice Rep", "--email", "alice@seller.example",
		"--kind", "staff", "--role", "manager", "--ttl", "2h")
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(testSecret)})
	require.NoError(t, err)
	a, err := keys.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, dealroom.Actor{ID: "alice", Name: "Alice Rep", Email: "alice@seller.example",
		Kind: dealroom.Staff, Role: dealroom.Manager}, a)

	c := claimsOf(t, tok)
	assert.InDelta(t, (2 * time.Hour).Seconds(), c["exp"].(float64)-c["iat"].(float64), 1, "--ttl sets the lifetime")
	assert.InDelta(t, float64(time.Now().Unix()), c["iat"].(float64), 60)

	other, err := jwtauth.New(jwtauth.Config{Secret: []byte(strings.Repeat("x", 40))})
	require.NoError(t, err)
	_, err = other.Verify(tok)
	assert.Error(t, err, "another secret does not verify it")
}

func TestTokenFlagWinsOverEnvironment(t *testing.T) {
	flagSecret := strings.Repeat("f", 32)
	tok := mintToken(t, env{"DEALROOM_JWT_SECRET": testSecret}, "--sub", "bob", "--jwt-secret", flagSecret)
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(flagSecret)})
	require.NoError(t, err)
	a, err := keys.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, "bob", a.ID)
	assert.Equal(t, dealroom.Staff, a.Kind, "kind defaults to staff")
	assert.Equal(t, dealroom.Rep, a.Role, "role defaults to rep")
	c := claimsOf(t, tok)
	assert.InDelta(t, (24 * time.Hour).Seconds(), c["exp"].(float64)-c["iat"].(float64), 1, "the lifetime defaults to a day")
}

func TestTokenIssuerAndAudience(t *testing.T) {
	e := env{"DEALROOM_JWT_SECRET": testSecret, "DEALROOM_JWT_ISSUER": "https://idp.example", "DEALROOM_JWT_AUDIENCE": "dealroom"}
	tok := mintToken(t, e, "--sub", "alice")
	c := claimsOf(t, tok)
	assert.Equal(t, "https://idp.example", c["iss"])
	assert.Equal(t, []any{"dealroom"}, c["aud"])
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(testSecret), Issuer: "https://idp.example", Audience: "dealroom"})
	require.NoError(t, err)
	_, err = keys.Verify(tok)
	assert.NoError(t, err, "a server configured with the same issuer and audience accepts it")
}

func TestTokenCustomerHasNoRole(t *testing.T) {
	tok := mintToken(t, env{"DEALROOM_JWT_SECRET": testSecret}, "--sub", "carol", "--name", "Carol Buyer",
		"--kind", "customer", "--role", "admin")
	assert.NotContains(t, claimsOf(t, tok), "role")
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(testSecret)})
	require.NoError(t, err)
	a, err := keys.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, dealroom.Actor{ID: "carol", Name: "Carol Buyer", Kind: dealroom.Customer}, a)
}

func TestTokenBadInput(t *testing.T) {
	e := env{"DEALROOM_JWT_SECRET": testSecret}
	tests := []struct {
		name string
		args []string
		env  env
		want string
	}{
		{"no sub", []string{"--name", "Nobody"}, e, "--sub is required"},
		{"bad kind", []string{"--sub", "x", "--kind", "partner"}, e, "--kind must be staff or customer"},
		{"bad role", []string{"--sub", "x", "--role", "ceo"}, e, "--role must be rep, manager or admin"},
		{"zero ttl", []string{"--sub", "x", "--ttl", "0s"}, e, "--ttl must be positive"},
		{"bad ttl", []string{"--sub", "x", "--ttl", "soon"}, e, "invalid value"},
		{"short secret", []string{"--sub", "x"}, env{"DEALROOM_JWT_SECRET": "short"}, "at least 32 bytes"},
		{"stray flag", []string{"--sub", "x", "--room", "r_1"}, e, "-room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"token"}, tt.args...), tt.env.get, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, stdout.String(), "no token is printed")
		})
	}
}

// TestTokenUsesServerSecretInDataDir checks that without a configured
// secret `dealroom token` signs with the one the server keeps in its data
// directory, and leaves that file as it is.
func TestTokenUsesServerSecretInDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := Config{DataDir: dir}
	serverSecret, err := cfg.jwtSecret() // what the server does on its first start
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(dir, "jwt-secret"))
	require.NoError(t, err)

	keys, err := jwtauth.New(jwtauth.Config{Secret: serverSecret})
	require.NoError(t, err)
	tok := mintToken(t, env{"DEALROOM_DATA_DIR": dir}, "--sub", "alice")
	_, err = keys.Verify(tok)
	require.NoError(t, err, "the server accepts the token")
	tok2 := mintToken(t, env{}, "--sub", "bob", "--data-dir", dir)
	_, err = keys.Verify(tok2)
	require.NoError(t, err)

	again, err := os.ReadFile(filepath.Join(dir, "jwt-secret"))
	require.NoError(t, err)
	assert.Equal(t, raw, again, "the server's secret is left as it is")
}

// TestTokenWithoutSecretRefuses checks that `dealroom token` with neither a
// configured secret nor the server's secret file refuses (an error, which
// main turns into exit status 1), says what to do, and writes nothing: a secret it made would not be the server's, and the
// tokens it signed would be refused.
func TestTokenWithoutSecretRefuses(t *testing.T) {
	for name, args := range map[string][]string{
		"missing data dir": {"--data-dir", filepath.Join(t.TempDir(), "nothing-here")},
		"empty data dir":   {"--data-dir", t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"token", "--sub", "alice"}, args...), env{}.get, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "no JWT secret")
			assert.Contains(t, err.Error(), "DEALROOM_JWT_SECRET")
			assert.Contains(t, err.Error(), "DEALROOM_DATA_DIR")
			assert.Empty(t, stdout.String(), "no token is printed")
			_, statErr := os.Stat(filepath.Join(args[1], "jwt-secret"))
			assert.ErrorIs(t, statErr, os.ErrNotExist, "no secret is made")
		})
	}
}

func TestRunCommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"help"}, env{}.get, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "dealroom token")

	err := run(context.Background(), []string{"migrate"}, env{}.get, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown command "migrate"`)

	stderr.Reset()
	err = run(context.Background(), []string{"-h"}, env{}.get, &stdout, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp, "flags without a command go to serve")
	assert.Contains(t, stderr.String(), "Usage of dealroom serve")

	err = run(context.Background(), []string{"serve", "-log-level", "loud"}, env{}.get, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DEALROOM_LOG_LEVEL")

	err = run(context.Background(), nil, env{"DEALROOM_DATA_DIR": t.TempDir(), "DEALROOM_JWT_SECRET": "too-short"}.get, &stdout, &stderr)
	require.Error(t, err, "a short secret stops the server from starting")
	assert.Contains(t, err.Error(), "at least 32 bytes")
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startRun runs `dealroom args...` in the background until the test ends,
// and returns its base URL once it listens.
func startRun(t *testing.T, args []string, e env) (url string, stdout *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, e.get, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "a cancelled server returns nil")
		case <-time.After(15 * time.Second):
			t.Error("the server did not stop within 15s of its context ending")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stdout
		}
		select {
		case err := <-done:
			t.Fatalf("the server stopped before listening: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not listen within 15s\nstdout: %s\nstderr: %s", stdout, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

// TestBareCommandServes checks that `dealroom` alone starts the embedded
// server, and that a token minted by `dealroom token` on the same data
// directory (its generated secret) signs in to it.
func TestBareCommandServes(t *testing.T) {
	dir := t.TempDir()
	e := env{"DEALROOM_ADDR": "127.0.0.1:0", "DEALROOM_DATA_DIR": dir, "DEALROOM_LOG_LEVEL": "warn"}
	url, stdout := startRun(t, nil, e)
	assert.Contains(t, stdout.String(), "embedded store in "+dir)
	assert.Contains(t, stdout.String(), "dealroom token --sub you", "the banner says how to sign in")

	status, body := get(t, url+"/healthz", "")
	assert.Equal(t, http.StatusOK, status, "%s", body)
	status, body = get(t, url+"/readyz", "")
	assert.Equal(t, http.StatusOK, status, "%s", body)
	assert.JSONEq(t, `{"store": "ok"}`, string(body))

	status, body = get(t, url+"/api/v1/me", "")
	assert.Equal(t, http.StatusUnauthorized, status, "%s", body)

	tok := mintToken(t, env{"DEALROOM_DATA_DIR": dir}, "--sub", "alice", "--name", "Alice Rep", "--role", "manager")
	status, body = get(t, url+"/api/v1/me", tok)
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.JSONEq(t, `{"user_id": "alice", "name": "Alice Rep", "email": "", "kind": "staff", "role": "manager"}`, string(body))

	status, body = get(t, url+"/api/v1/openapi.yaml", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, string(body), "openapi: 3.0.3", "the contract is served by the binary")
}

func TestServeWithFlags(t *testing.T) {
	dir := t.TempDir()
	url, _ := startRun(t, []string{"serve", "-addr", "127.0.0.1:0", "-data-dir", dir, "-log-level", "error"},
		env{"DEALROOM_JWT_SECRET": testSecret})
	tok := mintToken(t, env{"DEALROOM_JWT_SECRET": testSecret}, "--sub", "alice")
	status, body := get(t, url+"/api/v1/me", tok)
	require.Equal(t, http.StatusOK, status, "%s", body)
	_, err := os.Stat(filepath.Join(dir, "jwt-secret"))
	assert.ErrorIs(t, err, os.ErrNotExist, "with a configured secret none is generated")
	_, err = os.Stat(filepath.Join(dir, "dealroom.db"))
	assert.NoError(t, err, "the embedded store lives in the data directory")
}

// TestMetricsShowStoreCommits: an operator sees the embedded store's
// commits (how many, how long, how many commands each held) in /metrics.
func TestMetricsShowStoreCommits(t *testing.T) {
	dir := t.TempDir()
	url, _ := startRun(t, []string{"serve", "-addr", "127.0.0.1:0", "-data-dir", dir, "-log-level", "error"},
		env{"DEALROOM_JWT_SECRET": testSecret})
	tok := mintToken(t, env{"DEALROOM_JWT_SECRET": testSecret}, "--sub", "alice", "--name", "Alice", "--role", "rep")
	for i := range 3 {
		req, err := http.NewRequest(http.MethodPost, url+"/api/v1/rooms",
			strings.NewReader(fmt.Sprintf(`{"name": "Room %d", "company": "Acme"}`, i)))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	status, body := get(t, url+"/metrics", "")
	require.Equal(t, http.StatusOK, status)
	text := string(body)
	assert.Contains(t, text, "# TYPE dealroom_store_commit_seconds histogram")
	m := regexp.MustCompile(`(?m)^dealroom_store_commit_seconds_count (\d+)$`).FindStringSubmatch(text)
	require.NotNil(t, m, "%s", text)
	n, _ := strconv.Atoi(m[1])
	assert.GreaterOrEqual(t, n, 3, "every room was a commit of its own")
	assert.Regexp(t, `(?m)^dealroom_store_commit_seconds_bucket\{le="\+Inf"\} `+m[1]+`$`, text)
	assert.Regexp(t, `(?m)^dealroom_store_commands_total [3-9]$`, text)

	// The whole page is Prometheus's exposition format, as its own parser
	// reads it: the requests by route and status, the hub's counters and
	// gauges by their types, the Go runtime and the process.
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	for name, typ := range map[string]dto.MetricType{
		"dealroom_http_requests_total":           dto.MetricType_COUNTER,
		"dealroom_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"dealroom_events_appended_total":         dto.MetricType_COUNTER,
		"dealroom_ws_sessions":                   dto.MetricType_GAUGE,
		"dealroom_hub_delivered_total":           dto.MetricType_COUNTER,
		"go_goroutines":                          dto.MetricType_GAUGE,
		"go_memstats_heap_alloc_bytes":           dto.MetricType_GAUGE,
		"process_resident_memory_bytes":          dto.MetricType_GAUGE,
	} {
		if assert.Contains(t, fams, name) {
			assert.Equal(t, typ, fams[name].GetType(), name)
		}
	}
	created := 0.0
	for _, mm := range fams["dealroom_http_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range mm.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["method"] == "POST" && labels["route"] == "/api/v1/rooms" && labels["status"] == "201" {
			created = mm.GetCounter().GetValue()
		}
	}
	assert.Equal(t, 3.0, created, "the three rooms made, by route and status")
	assert.Equal(t, 3.0, fams["dealroom_events_appended_total"].GetMetric()[0].GetCounter().GetValue())
}

// TestWarnPlainPublicURL: a public URL in plain http on another machine is
// warned about at start-up (its cookies are not Secure); https, and http
// on this machine (development), are not.
func TestWarnPlainPublicURL(t *testing.T) {
	for url, warned := range map[string]bool{
		"http://deals.example.com":  true,
		"http://10.0.0.5:8080":      true,
		"https://deals.example.com": false,
		"http://localhost:8080":     false,
		"http://127.0.0.1:8080":     false,
		"http://[::1]:8080":         false,
		"":                          false,
	} {
		var logged syncBuffer
		warnPlainPublicURL(slog.New(slog.NewTextHandler(&logged, nil)), url)
		assert.Equal(t, warned, strings.Contains(logged.String(), "plain http"), url)
	}
}
