package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"dealroom"
)

// FloodStats are the mention floods one member posted during a fanout run
// (-flood-rate): writes of the other rooms should not wait behind them.
type FloodStats struct {
	Members int            `json:"room_members"`
	Sent    int            `json:"sent"`
	Status  map[string]int `json:"status"` // "201", "422", "429", "transport"
	Ack     Summary        `json:"ack"`
}

// floodRoom makes the room of the flood: one owner and cfg.FloodMembers
// staff members with look-alike names ("Flood Member 17"), the flooder
// among them. It returns the room and the flooder's token.
func (b *bench) floodRoom(ctx context.Context) (string, string, error) {
	owner := fmt.Sprintf("bench-%s-flood-owner", b.runID)
	ownerTok := b.mint.token(owner, dealroom.Rep)
	var out struct {
		ID string `json:"id"`
	}
	err := b.writer.doRetry(ctx, http.MethodPost, "/api/v1/rooms", ownerTok, "room-flood-"+b.runID,
		map[string]any{"name": "Bench flood " + b.runID, "company": "Flood Corp"}, &out)
	if err != nil {
		return "", "", fmt.Errorf("creating the flood room: %w", err)
	}
	err = parallel(ctx, b.cfg.FloodMembers, b.cfg.SetupConc, func(ctx context.Context, i int) error {
		admin := b.mint.token(fmt.Sprintf("bench-%s-admin%d", b.runID, i%64), dealroom.Admin)
		u := fmt.Sprintf("bench-%s-f%d", b.runID, i)
		return b.writer.doRetry(ctx, http.MethodPost, "/api/v1/rooms/"+url.PathEscape(out.ID)+"/members", admin,
			"member-"+u, map[string]any{"user_id": u, "name": fmt.Sprintf("Flood Member %d", i), "kind": "staff", "access": "write"}, nil)
	})
	if err != nil {
		return "", "", fmt.Errorf("adding the flood room's members: %w", err)
	}
	return out.ID, b.mint.token(fmt.Sprintf("bench-%s-f0", b.runID), dealroom.Rep), nil
}

// floodBodies are the two floods, each the longest body there is (10,000
// characters): @x repeated (every @ a mention that names no one), and
// names of members with the look-alike prefix of everyone's name, 50 of
// them (the most a message may make since the cap) padded with text.
func floodBodies(members int) [2]string {
	const max = 10000
	x := strings.TrimSpace(strings.Repeat("@x ", max/3))
	var b strings.Builder
	for i := range min(50, members) {
		fmt.Fprintf(&b, "@Flood Member %d ", (i*7)%members)
	}
	named := b.String()
	named += strings.Repeat("y", max-len([]rune(named)))
	return [2]string{x, named}
}

// flood posts mention floods into room as one member at cfg.FloodRate
// per second until the writing window ends (cfg.Duration from now), open
// loop, alternating the two floods, and waits for their answers.
func (b *bench) flood(ctx context.Context, room, token string) *FloodStats {
	f := &flooder{b: b, room: room, token: token, bodies: floodBodies(b.cfg.FloodMembers),
		stats: &FloodStats{Members: b.cfg.FloodMembers + 1, Status: map[string]int{}}}
	tick := time.NewTicker(time.Duration(float64(time.Second) / b.cfg.FloodRate))
	defer tick.Stop()
	end := time.After(b.cfg.Duration)
	for n := 0; ; n++ {
		select {
		case <-end:
		case <-ctx.Done():
		case <-tick.C:
			f.stats.Sent++
			f.wg.Add(1)
			go f.post(ctx, n)
			continue
		}
		f.wg.Wait()
		f.stats.Ack = summarize(f.acks)
		return f.stats
	}
}

// flooder is one run of floods.
type flooder struct {
	b           *bench
	room, token string
	bodies      [2]string
	wg          sync.WaitGroup
	mu          sync.Mutex
	stats       *FloodStats
	acks        []int64
}

// post posts flood n and notes its answer.
func (f *flooder) post(ctx context.Context, n int) {
	defer f.wg.Done()
	start := time.Now()
	err := f.b.writer.do(ctx, http.MethodPost, "/api/v1/rooms/"+url.PathEscape(f.room)+"/messages", f.token,
		fmt.Sprintf("flood-%s-%d", f.b.runID, n), map[string]string{"body": f.bodies[n%2]}, nil)
	status := "201"
	if err != nil {
		status = "transport"
		if st := statusOf(err); st != 0 {
			status = strconv.Itoa(st)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Status[status]++
	f.acks = append(f.acks, int64(time.Since(start)))
}
