package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// TestInstancesOverRedisTLS: two server processes reach a Redis that
// speaks TLS only to clients with a certificate of its authority
// (DEALROOM_REDIS_URL rediss://, DEALROOM_REDIS_CA_FILE,
// DEALROOM_REDIS_TLS_CERT / _KEY): presence and a message posted on one
// instance reach a device on the other; an instance without the client
// certificate does not start.
func TestInstancesOverRedisTLS(t *testing.T) {
	mongoURI, _ := testenv.MongoDatabase(t)
	rs := testenv.StartRedisTLS(t, true)
	f := rs.TLSFiles()
	redisURL := "rediss://" + rs.TLSAddr() + "/0"
	tlsEnv := []string{"DEALROOM_REDIS_CA_FILE=" + f.CA, "DEALROOM_REDIS_TLS_CERT=" + f.ClientCert, "DEALROOM_REDIS_TLS_KEY=" + f.ClientKey}
	a := startInstance(t, mongoURI, redisURL, tlsEnv...)
	b := startInstance(t, mongoURI, redisURL, tlsEnv...)

	repTok := token(t, rep)
	st, data := call(t, a.URL, repTok, "POST", "/rooms", map[string]any{"name": "Over TLS", "company": "Acme"})
	require.Equal(t, 201, st, "%s", data)
	var r struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(data, &r))
	st, data = call(t, a.URL, repTok, "POST", "/rooms/"+r.ID+"/members", map[string]any{"user_id": buyer.ID, "name": buyer.Name, "kind": "customer", "access": "write"})
	require.Equal(t, 201, st, "%s", data)

	testPresenceAcross(t, a, b, r.ID)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watch := dialWS(t, ctx, b.URL, token(t, buyer))
	defer watch.CloseNow()
	send(t, ctx, watch, map[string]any{"type": "subscribe", "room": r.ID, "after": 0})
	for subscribed := false; !subscribed; { // wait until the subscription stands
		_, frame, err := watch.Read(ctx)
		require.NoError(t, err)
		subscribed = strings.Contains(string(frame), `"subscribed"`)
	}
	st, data = call(t, a.URL, repTok, "POST", "/rooms/"+r.ID+"/messages", map[string]any{"body": "sent through Redis over TLS"})
	require.Equal(t, 201, st, "%s", data)
	for {
		_, frame, err := watch.Read(ctx)
		require.NoError(t, err, "the message posted on the other instance arrives")
		if strings.Contains(string(frame), "sent through Redis over TLS") {
			break
		}
	}

	// Without the client certificate, an instance does not start: it
	// says why.
	out, err := runServe(t, mongoURI, redisURL, "DEALROOM_REDIS_CA_FILE="+f.CA)
	require.Error(t, err)
	require.Contains(t, out, "certificate required")
}

// runServe runs the server with the settings and extra ones, expecting it
// to stop by itself within a minute, and returns what it wrote.
func runServe(t *testing.T, mongoURI, redisURL string, extra ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "serve")
	cmd.Env = append(os.Environ(),
		"DEALROOM_ADDR="+freeAddr(t), "DEALROOM_MONGO_URI="+mongoURI, "DEALROOM_REDIS_URL="+redisURL,
		"DEALROOM_JWT_SECRET="+secret, "DEALROOM_DATA_DIR="+t.TempDir())
	cmd.Env = append(cmd.Env, extra...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "the server stopped by itself")
	return string(out), err
}
