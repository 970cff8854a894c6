package mongostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"dealroom/webhook"
	"dealroom/webhook/webhooktest"
)

func TestWebhookStore(t *testing.T) {
	webhooktest.TestStore(t, func(tb testing.TB) webhook.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}

// TestSweepRemovesADeletedEndpointsDeliveries: DeleteEndpoint removes the
// endpoint, then its deliveries; when it stops between the two, the
// deliveries left are removed by the next sweep.
func TestSweepRemovesADeletedEndpointsDeliveries(t *testing.T) {
	ctx := context.Background()
	uri, db := database(t)
	st := open(t, uri, db)
	require.NoError(t, st.CreateEndpoint(ctx, webhooktest.Endpoint("wh1")))
	require.NoError(t, st.CreateEndpoint(ctx, webhooktest.Endpoint("wh2")))
	_, err := st.AddDeliveries(ctx, []webhook.Delivery{webhooktest.Delivery("wh1", "r1", 1), webhooktest.Delivery("wh2", "r1", 1)})
	require.NoError(t, err)
	// The first half of a DeleteEndpoint, as a crash would leave it.
	_, err = st.Database().Collection("webhooks").DeleteOne(ctx, bson.D{{Key: "_id", Value: "wh1"}})
	require.NoError(t, err)

	n, err := st.SweepDeliveries(ctx, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	left, err := st.Deliveries(ctx, "wh1", 10)
	require.NoError(t, err)
	assert.Empty(t, left)
	kept, err := st.PendingDeliveries(ctx, "wh2", "", 0, 10)
	require.NoError(t, err)
	assert.Len(t, kept, 1, "a pending delivery of an existing endpoint stays")
}
