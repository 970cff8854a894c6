package roomtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// BenchPipeline measures the manager's pipeline (room.Service.Pipeline) on
// a store holding rooms rooms of steps steps each: dated shared steps in
// every commitment state, some overdue, some internal, and two staff and
// one customer member per room. The rooms are written as room.created
// events (a room laid out from a plan), several at a time.
func BenchPipeline(b *testing.B, s room.Store, rooms, steps int) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	seed := func(i int) error {
		id := fmt.Sprintf("r_bench%05d", i)
		_, err := s.Execute(ctx, room.Command{Room: id, Actor: Alice.ID, At: now,
			Decide: func(room.View) (room.Decision, error) { return room.Decision{Event: benchRoom(id, i, steps, now)}, nil }})
		return err
	}
	work := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := seed(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range rooms {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	require.NoError(b, <-errs)

	// A week on: two or three steps of each room are overdue.
	svc := &room.Service{Store: s, Now: func() time.Time { return now.Add(7 * 24 * time.Hour) }}
	// The first answer decodes every brief; later ones only those that
	// changed (room.BriefCache): both are reported.
	cold, cpuCold := time.Now(), cpuTime()
	p, err := svc.Pipeline(ctx, Mike, room.PipelineFilter{})
	require.NoError(b, err)
	require.NoError(b, json.NewEncoder(io.Discard).Encode(p))
	firstMS, firstCPU := float64(time.Since(cold).Microseconds())/1000, float64((cpuTime()-cpuCold).Microseconds())/1000
	require.Len(b, p.Cards, rooms)
	require.NotEmpty(b, p.Overdue)
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		// The answer as the API sends it: read, then written as JSON.
		p, err := svc.Pipeline(ctx, Mike, room.PipelineFilter{})
		if err != nil {
			b.Fatal(err)
		}
		if err := json.NewEncoder(io.Discard).Encode(p); err != nil {
			b.Fatal(err)
		}
	}
	// On a machine shared with other work the time per answer is mostly
	// waiting for a core; the process's CPU time per answer is not.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(firstMS, "first-ms")
	b.ReportMetric(firstCPU, "first-cpu-ms")
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRoom is the room.created event of bench room i.
func benchRoom(id string, i, steps int, now time.Time) room.Event {
	r := room.Room{ID: id, Name: fmt.Sprintf("Bench deal %d", i), Company: "Acme", Stage: room.DefaultPipeline[i%4],
		Pipeline: room.DefaultPipeline, CloseWindow: room.CloseWindows[i%len(room.CloseWindows)], Tags: []string{},
		OwnerID: Alice.ID, CreatedBy: Alice.ID, CreatedAt: now, UpdatedAt: now, LastActivityAt: now,
		Forecast: &room.Forecast{CloseBy: "2027-01", SetBy: Alice.ID, SetAt: now, Moves: i % 3, Slips: i % 2}}
	members := []room.Member{
		{UserID: Alice.ID, Name: Alice.Name, Kind: dealroom.Staff, Access: room.Write, RoleInRoom: room.Owner, AddedBy: Alice.ID, AddedAt: now},
		{UserID: Bob.ID, Name: Bob.Name, Kind: dealroom.Staff, Access: room.Write, AddedBy: Alice.ID, AddedAt: now},
		{UserID: Carol.ID, Name: Carol.Name, Kind: dealroom.Customer, Access: room.Write, AddedBy: Alice.ID, AddedAt: now},
	}
	tasks := make([]task.Task, 0, steps)
	for j := range steps {
		due := task.DateOf(now.AddDate(0, 0, 5+j))
		vis := dealroom.Shared
		if j%5 == 4 {
			vis = dealroom.Internal
		}
		t, err := task.New(task.Draft{Title: fmt.Sprintf("Step %d of the plan", j), Description: "What done looks like.",
			Due: &due, Visibility: vis, Assignees: []string{Bob.ID}}, fmt.Sprintf("t_%s_%02d", id, j), id, Alice.ID, now, float64(j+1))
		if err != nil {
			panic(err)
		}
		if vis == dealroom.Shared {
			c := task.Propose(nil, nil, &due, Alice.ID, dealroom.Staff, now)
			if j%3 != 0 {
				c, _, _ = task.Confirm(c, &due, Carol.ID, dealroom.Customer, now)
			}
			if j%4 == 1 {
				later := task.DateOf(now.AddDate(0, 0, 9+j))
				t.Due, c = &later, task.Propose(c, &due, &later, Alice.ID, dealroom.Staff, now)
			}
			t.Commitment = c
		}
		tasks = append(tasks, t)
	}
	data, err := json.Marshal(room.RoomCreatedData{Room: r, Members: members, Tasks: tasks})
	if err != nil {
		panic(err)
	}
	return room.Event{ID: "e_" + id, RoomID: id, Type: room.RoomCreated, At: now, Visibility: dealroom.Shared, Data: data,
		Actor: room.EventActor{ID: Alice.ID, Kind: dealroom.Staff, Name: Alice.Name}}
}
