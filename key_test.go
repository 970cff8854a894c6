package dealroom_test

import (
	"strings"
	"testing"

	"dealroom"
)

// TestValidKey: one rule for the REST Idempotency-Key and the websocket
// command id: 1 to MaxKey printable ASCII characters without spaces.
func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"op-1_2.3:~!", true},
		{strings.Repeat("k", dealroom.MaxKey), true},
		{strings.Repeat("k", 129), true}, // the websocket's old limit was 128
		{"", false},
		{strings.Repeat("k", dealroom.MaxKey+1), false},
		{"a b", false},
		{"a\tb", false},
		{"é", false},
		{"a\x7f", false},
	} {
		if got := dealroom.ValidKey(tc.key); got != tc.want {
			t.Errorf("ValidKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
	if !strings.Contains(dealroom.KeyRule(), "200") {
		t.Errorf("KeyRule() = %q does not state the limit", dealroom.KeyRule())
	}
}
