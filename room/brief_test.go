package room_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/room"
)

// The cache decodes a room's brief again exactly when its bytes changed,
// and hands out copies that a caller may reorder without harm.
func TestBriefCache(t *testing.T) {
	var c room.BriefCache
	decodes := 0
	decode := func(raw []byte) (room.Brief, error) {
		decodes++
		var b room.Brief
		return b, json.Unmarshal(raw, &b)
	}
	v1 := []byte(`{"steps":[{"id":"t1","title":"One"},{"id":"t2","title":"Two"}],"people":[]}`)
	b, err := c.Decode("r1", v1, decode)
	require.NoError(t, err)
	b.Steps[0], b.Steps[1] = b.Steps[1], b.Steps[0]
	again, err := c.Decode("r1", []byte(string(v1)), decode)
	require.NoError(t, err)
	assert.Equal(t, 1, decodes, "the same bytes are not decoded twice")
	assert.Equal(t, "t1", again.Steps[0].ID, "a caller's change does not reach the cache")

	v2 := []byte(`{"steps":[{"id":"t1","title":"Renamed"}],"people":[]}`)
	changed, err := c.Decode("r1", v2, decode)
	require.NoError(t, err)
	assert.Equal(t, 2, decodes)
	assert.Equal(t, "Renamed", changed.Steps[0].Title)
	other, err := c.Decode("r2", v1, decode)
	require.NoError(t, err)
	assert.Equal(t, 3, decodes, "rooms are cached apart")
	assert.Len(t, other.Steps, 2)
	_, err = c.Decode("r3", []byte(`{`), decode)
	assert.Error(t, err)
}
