package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnsubscribePageOffersWhatTheLinkNames: the page of a room's
// notification offers to stop that room's email or all of it; the page of
// a link that names no room (a digest's, about every room) offers only to
// stop all email, not "this room".
func TestUnsubscribePageOffersWhatTheLinkNames(t *testing.T) {
	render := func(v unsubscribeView) string {
		var b strings.Builder
		require.NoError(t, unsubscribeTmpl.Execute(&b, v))
		return b.String()
	}
	page := render(unsubscribeView{RoomName: "Acme renewal"})
	assert.Contains(t, page, "Stop email about Acme renewal")
	assert.Contains(t, page, "Stop all email from Dealroom")

	page = render(unsubscribeView{})
	assert.NotContains(t, page, "Stop email about")
	assert.Contains(t, page, "Stop all email from Dealroom")
}
