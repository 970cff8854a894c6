package room_test

import (
	"fmt"
	"strings"
	"testing"

	"dealroom"
	"dealroom/room"
)

// BenchmarkResolveMentions: the worst texts of 10,000 characters against
// a room of 300 look-alike names (scenario f of the load bench).
func BenchmarkResolveMentions(b *testing.B) {
	members := make([]room.Member, 300)
	for i := range members {
		members[i] = room.Member{UserID: fmt.Sprintf("u%d", i), Name: fmt.Sprintf("Flood Member %d", i), Kind: dealroom.Staff}
	}
	var named strings.Builder
	for i := range 50 {
		fmt.Fprintf(&named, "@Flood Member %d ", (i*7)%300)
	}
	texts := map[string]string{
		"x-flood":   strings.TrimSpace(strings.Repeat("@x ", room.MaxBody/3)),
		"50-names":  named.String() + strings.Repeat("y", room.MaxBody-named.Len()),
		"no-at-all": strings.Repeat("y", room.MaxBody),
	}
	for _, name := range []string{"x-flood", "50-names", "no-at-all"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				room.ResolveMentions(texts[name], members, dealroom.Shared)
			}
		})
	}
}
