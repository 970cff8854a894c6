package hub

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/broker"
)

// TestOlderReadMarkerDoesNotReplaceNewer: two read markers of one person,
// published concurrently by another instance, arrive out of order; the
// older one, arriving last, does not take the newer one's place in a
// device's queue, and a marker at or behind what was passed on is not
// sent again.
func TestOlderReadMarkerDoesNotReplaceNewer(t *testing.T) {
	st := &logStore{}
	for range 9 {
		st.commit("r", 20)
	}
	h := newTestHub(t, Config{}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := h.NewSession(dealroom.Actor{ID: "olivia", Kind: dealroom.Staff})
	s.Subscribe("r", 9)
	readUntilSubscribed(t, ctx, s)

	read := func(seq int64) broker.Message {
		return broker.Message{Room: "r", Kind: broker.Read, Origin: "other-instance",
			Data: mustJSON(readFrame{Type: "read", Room: "r", UserID: "bea", Seq: seq, At: time.Now().UTC()})}
	}
	// Both arrive before the device takes its frames: they meet in its
	// queue, the later one in the place of the earlier.
	h.Receive(read(7))
	h.Receive(read(5))
	h.Receive(read(7))
	h.Receive(read(8))
	h.Receive(read(6))
	var got []int64
	for len(got) == 0 || got[len(got)-1] < 8 {
		fr, err := s.Next(ctx)
		require.NoError(t, err)
		var f readFrame
		require.NoError(t, json.Unmarshal(fr, &f))
		if f.Type == "read" {
			got = append(got, f.Seq)
		}
	}
	assert.Equal(t, []int64{8}, got, "the newest marker, once")
	h.Receive(read(3))
	h.Receive(read(9))
	fr, err := s.Next(ctx)
	require.NoError(t, err)
	var f readFrame
	require.NoError(t, json.Unmarshal(fr, &f))
	assert.Equal(t, int64(9), f.Seq, "an older marker after it is not sent; a newer one is")
}
