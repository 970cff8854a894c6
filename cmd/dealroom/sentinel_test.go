package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// With DEALROOM_REDIS_URL naming a Redis Sentinel setup, the server runs
// on the master the sentinels name, /readyz reports its broker, and is
// ready again after the master was killed and a replica promoted.
func TestServeOnRedisSentinel(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	uri, db := testenv.MongoDatabase(t)
	u, err := url.Parse(uri)
	require.NoError(t, err)
	u.Path = "/" + db
	e := env{"DEALROOM_ADDR": "127.0.0.1:0", "DEALROOM_DATA_DIR": t.TempDir(), "DEALROOM_JWT_SECRET": processSecret,
		"DEALROOM_MONGO_URI": u.String(), "DEALROOM_REDIS_URL": s.URL()}
	cfg, err := parseConfig("dealroom serve", nil, e.get, &bytes.Buffer{})
	require.NoError(t, err)
	app := &App{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, app.Open(context.Background()))
	t.Cleanup(func() { app.Close() })

	ready := "http://" + app.Addr() + "/readyz"
	status, body := get(t, ready, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.JSONEq(t, `{"store": "ok", "broker": "ok"}`, string(body))

	old := s.KillMaster()
	s.WaitFailover(old, 20*time.Second)
	assert.Eventually(t, func() bool {
		resp, err := http.Get(ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond, "ready again on the promoted replica")
}
