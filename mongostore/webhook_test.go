package mongostore_test

import (
	"testing"

	"dealroom/webhook"
	"dealroom/webhook/webhooktest"
)

func TestWebhookStore(t *testing.T) {
	webhooktest.TestStore(t, func(tb testing.TB) webhook.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
