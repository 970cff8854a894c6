package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// TestReadinessWithoutRedis: while Redis is down an instance is not ready
// (/readyz 503, the broker unavailable) yet goes on taking writes;
// /readyz?exclude=broker, what a readiness probe may ask so that a Redis
// failover does not take every instance out at once, answers 200 with the
// broker still reported; once Redis is back the instance is ready again.
func TestReadinessWithoutRedis(t *testing.T) {
	mongoURI, _ := testenv.MongoDatabase(t)
	rs := testenv.StartRedis(t)
	in := startInstance(t, mongoURI, "redis://"+rs.Addr()+"/0")
	ready := func(query string) (int, map[string]string) {
		resp, err := http.Get(in.URL + "/readyz" + query)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var m map[string]string
		require.NoError(t, json.Unmarshal(raw, &m), "%s", raw)
		return resp.StatusCode, m
	}
	repTok := token(t, rep)
	st, data := call(t, in.URL, repTok, "POST", "/rooms", map[string]any{"name": "Without Redis", "company": "Acme"})
	require.Equal(t, 201, st, "%s", data)
	var r struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(data, &r))

	rs.Stop()
	code, m := ready("")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, map[string]string{"store": "ok", "broker": "unavailable"}, m)
	code, m = ready("?exclude=broker")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]string{"store": "ok", "broker": "unavailable"}, m)
	st, data = call(t, in.URL, repTok, "POST", "/rooms/"+r.ID+"/messages", map[string]any{"body": "written while Redis is down"})
	assert.Equal(t, 201, st, "a write is stored without Redis: %s", data)

	rs.Start()
	assert.Eventually(t, func() bool {
		code, _ := ready("")
		return code == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond, "ready again once Redis is back")
}
