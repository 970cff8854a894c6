package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testenv"
	wt "dealroom/webhook/webhooktest"
)

// TestWebhooksAcrossInstances: two instances share MongoDB; events
// written to either are posted by whichever holds the webhooks' lease;
// after one is killed the other posts the rest. Each event arrives once,
// or again only under its webhook-id, in order per room.
func TestWebhooksAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	mongoURI, _ := testenv.MongoDatabase(t)
	rs := testenv.StartRedis(t)
	redisURL := "redis://" + rs.Addr() + "/0"
	recv := wt.StartReceiver(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, recv.CertPEM(), 0o600))
	env := []string{"DEALROOM_OUTBOUND_ALLOW=127.0.0.1", "DEALROOM_OUTBOUND_CA_FILE=" + ca}
	a, b := startInstance(t, mongoURI, redisURL, env...), startInstance(t, mongoURI, redisURL, env...)

	ada := dealroom.Actor{ID: "ada", Name: "Ada Admin", Email: "ada@seller.example", Kind: dealroom.Staff, Role: dealroom.Admin}
	rita := dealroom.Actor{ID: "rita", Name: "Rita Rep", Email: "rita@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	adaTok, ritaTok := token(t, ada), token(t, rita)
	st, data := call(t, b.URL, adaTok, "POST", "/admin/webhooks", map[string]any{"url": recv.URL + "/hook"})
	require.Equal(t, 201, st, "%s", data)
	var ep struct{ Secret string }
	require.NoError(t, json.Unmarshal(data, &ep))
	recv.SetSecret("/hook", ep.Secret)

	rooms := make([]string, 2)
	for i := range rooms {
		st, data := call(t, a.URL, ritaTok, "POST", "/rooms", map[string]any{"name": fmt.Sprint("Deal ", i), "company": "Acme"})
		require.Equal(t, 201, st, "%s", data)
		var r struct{ ID string }
		require.NoError(t, json.Unmarshal(data, &r))
		rooms[i] = r.ID
	}
	post := func(base string, i int) {
		st, data := call(t, base, ritaTok, "POST", "/rooms/"+rooms[i%2]+"/messages", map[string]any{"body": fmt.Sprint("point ", i)})
		require.Equal(t, 201, st, "%s", data)
	}
	const n = 20
	for i := range n {
		post([]string{a.URL, b.URL}[i/2%2], i)
	}
	require.Eventually(t, func() bool { return len(recv.Got()) >= 1 }, 60*time.Second, 10*time.Millisecond)
	a.kill()
	for i := n; i < 2*n; i++ {
		post(b.URL, i)
	}
	want := map[string][]string{}
	total := 0
	for _, r := range rooms {
		for _, raw := range timeline(t, b.URL, ritaTok, r) {
			var ev struct{ ID string }
			require.NoError(t, json.Unmarshal(raw, &ev))
			want[r] = append(want[r], ev.ID)
		}
		total += len(want[r])
	}
	require.Eventually(t, func() bool {
		got := wt.Arrived(t, recv)
		return len(got[rooms[0]])+len(got[rooms[1]]) == total
	}, 120*time.Second, 50*time.Millisecond, "every event delivered")
	got := wt.Arrived(t, recv)
	for _, r := range rooms {
		assert.Equal(t, want[r], got[r], "room %s: every event, in order", r)
	}
	t.Logf("%d requests, %d taken, for %d events", recv.Attempts(), len(recv.Got()), total)
}
