package redisbroker

import "testing"

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"123456789", 0x31C3 % slotCount}, // CRC-16/XMODEM's check value
		{"foo", 12182},                    // CLUSTER KEYSLOT foo
		{"{user1000}.following", 3443},    // the hash tag decides
		{"{user1000}.followers", 3443},
		{"foo{{bar}}zap", slot("{bar")},
		{"dealroom:room:{r1}", slot("r1")},
	} {
		if got := slot(tc.key); got != tc.want {
			t.Errorf("slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}
