package room

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestRoomClone: a clone shares nothing with its room, so that a decision
// changing the room a store handed it leaves the store's copy alone.
func TestRoomClone(t *testing.T) {
	v, at := 1200.0, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r := &Room{ID: "r_1", Name: "Acme", Pipeline: []Stage{Discovery, Signing}, Tags: []string{"a"}, Value: &v, LastCustomerActivityAt: &at}
	c := r.Clone()
	assert.Equal(t, r, c)
	c.Name, c.Pipeline[0], c.Tags[0], *c.Value = "Changed", Trust, "b", 1
	*c.LastCustomerActivityAt = at.Add(time.Hour)
	c.Tags = append(c.Tags, "c")
	assert.Equal(t, "Acme", r.Name)
	assert.Equal(t, []Stage{Discovery, Signing}, r.Pipeline)
	assert.Equal(t, []string{"a"}, r.Tags)
	assert.Equal(t, 1200.0, *r.Value)
	assert.Equal(t, at, *r.LastCustomerActivityAt)
	assert.Nil(t, (*Room)(nil).Clone())
	empty := (&Room{Tags: []string{}}).Clone()
	assert.NotNil(t, empty.Tags, "an empty list stays a list (JSON [], not null)")
	assert.Nil(t, (&Room{}).Clone().Tags)
}
