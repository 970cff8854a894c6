package hub_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/hub"
)

func TestDecodeReadFrame(t *testing.T) {
	f, err := hub.DecodeFrame([]byte(`{"type":"read","room":"r_1","seq":57}`))
	require.NoError(t, err)
	assert.Equal(t, hub.Frame{Type: hub.Read, Room: "r_1", Seq: 57}, f)

	for _, c := range []struct{ frame, field string }{
		{`{"type":"read","room":"r_1"}`, "seq"},
		{`{"type":"read","room":"r_1","seq":-1}`, "seq"},
		{`{"type":"read","room":"r_1","seq":1.5}`, "seq"},
		{`{"type":"read","seq":3}`, "room"},
		{`{"type":"subscribe","room":"r_1","seq":3}`, "seq"},
		{`{"type":"read","room":"r_1","seq":3,"after":2}`, "after"},
	} {
		_, err := hub.DecodeFrame([]byte(c.frame))
		assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), c.frame)
		var e *dealroom.Error
		if assert.ErrorAs(t, err, &e, c.frame) {
			assert.Equal(t, c.field, e.Field, c.frame)
		}
	}
}
