package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testenv"
)

var notePoint = regexp.MustCompile(`point (\d+)\.`)

// TestNotificationsAcrossInstances: two instances share MongoDB and
// Redis and mail through one SMTP server. Mentions written to either are
// mailed by whichever holds the lease; after the holder (or the other) is
// killed, the survivor mails the rest. Every mention reaches each person
// under one Message-ID, however many times it went out.
func TestNotificationsAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	mongoURI, _ := testenv.MongoDatabase(t)
	rs := testenv.StartRedis(t)
	redisURL := "redis://" + rs.Addr() + "/0"
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	mailEnv := []string{"DEALROOM_SMTP_URL=" + srv.URL(), "DEALROOM_MAIL_FROM=Dealroom <rooms@deals.example.com>",
		"DEALROOM_PUBLIC_URL=https://deals.example.com", "DEALROOM_MAIL_RATE=40", "DEALROOM_NOTIFY_DELAY=0s"}
	a, b := startInstance(t, mongoURI, redisURL, mailEnv...), startInstance(t, mongoURI, redisURL, mailEnv...)

	rita := dealroom.Actor{ID: "rita", Name: "Rita Rep", Email: "rita@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	pete := dealroom.Actor{ID: "pete", Name: "Pete Peer", Email: "pete@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	ritaTok, peteTok := token(t, rita), token(t, pete)
	st, data := call(t, b.URL, peteTok, "GET", "/me", nil)
	require.Equal(t, 200, st, "%s", data)
	st, data = call(t, a.URL, ritaTok, "POST", "/rooms", map[string]any{"name": "Acme renewal", "company": "Acme"})
	require.Equal(t, 201, st, "%s", data)
	var r struct{ ID string }
	require.NoError(t, json.Unmarshal(data, &r))
	st, data = call(t, a.URL, ritaTok, "POST", "/rooms/"+r.ID+"/members",
		map[string]any{"user_id": pete.ID, "name": pete.Name, "kind": "staff", "access": "write"})
	require.Equal(t, 201, st, "%s", data)
	st, data = call(t, a.URL, ritaTok, "POST", "/rooms/"+r.ID+"/invites", map[string]any{"email": "bea@buyer.example"})
	require.Equal(t, 201, st, "%s", data)
	var inv struct{ Code string }
	require.NoError(t, json.Unmarshal(data, &inv))
	st, data = call(t, b.URL, "", "POST", "/invites/"+inv.Code+"/accept", map[string]any{"name": "Bea Buyer", "email": "bea@buyer.example"})
	require.Equal(t, 200, st, "%s", data)

	const n = 20
	post := func(base string, i int) {
		st, data := call(t, base, ritaTok, "POST", "/rooms/"+r.ID+"/messages",
			map[string]any{"body": fmt.Sprintf("@Pete Peer and @Bea Buyer, point %d.", i)})
		require.Equal(t, 201, st, "%s", data)
	}
	for i := range n {
		post([]string{a.URL, b.URL}[i%2], i)
	}
	require.Eventually(t, func() bool { return len(srv.Messages()) >= 1 }, 60*time.Second, 10*time.Millisecond)
	a.kill()
	for i := n; i < 2*n; i++ {
		post(b.URL, i)
	}

	byPerson := func() map[string]map[string][]string {
		out := map[string]map[string][]string{}
		for _, m := range srv.Messages() {
			if len(m.To) != 1 {
				continue
			}
			// A mail lists the mentions of one person due together.
			for _, p := range notePoint.FindAllStringSubmatch(m.Text, -1) {
				if out[m.To[0]] == nil {
					out[m.To[0]] = map[string][]string{}
				}
				out[m.To[0]][p[1]] = append(out[m.To[0]][p[1]], m.Header.Get("Message-Id"))
			}
		}
		return out
	}
	require.Eventually(t, func() bool {
		got := byPerson()
		return len(got[pete.Email]) == 2*n && len(got["bea@buyer.example"]) == 2*n
	}, 120*time.Second, 50*time.Millisecond, "every mention mailed to both")
	for who, points := range byPerson() {
		for p, got := range points {
			for _, id := range got {
				assert.Equal(t, got[0], id, "%s, point %s: one Message-ID", who, p)
			}
		}
	}
	texts := map[string]string{}
	for _, m := range srv.Messages() {
		id := m.Header.Get("Message-Id")
		if prev, ok := texts[id]; ok {
			assert.Equal(t, prev, m.Text, "Message-ID %s: a repeat is the same mail", id)
		}
		texts[id] = m.Text
	}
	assert.NotContains(t, byPerson(), rita.Email, "the author is not mailed")
	t.Logf("%d mails for %d", len(srv.Messages()), 4*n)
}
