package presence_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/presence"
)

func dev(session, user, name string, kind dealroom.Kind, st presence.State) presence.Device {
	return presence.Device{Session: session, UserID: user, Name: name, Kind: kind, State: st}
}

func onTask(d presence.Device, task string, internal bool) presence.Device {
	d.TaskID, d.TaskInternal = task, internal
	return d
}

var (
	ann1 = dev("s-ann-1", "ann", "Ann Staff", dealroom.Staff, presence.Viewing)
	ann2 = dev("s-ann-2", "ann", "Ann Staff", dealroom.Staff, presence.Idle)
	bob1 = dev("s-bob-1", "bob", "Bob Buyer", dealroom.Customer, presence.Viewing)
)

func member(user, name string, kind dealroom.Kind, st presence.State, devices int, task string) presence.Member {
	return presence.Member{UserID: user, Name: name, Kind: kind, State: st, Devices: devices, TaskID: task}
}

func TestParseState(t *testing.T) {
	for _, s := range []string{"viewing", "typing", "idle"} {
		st, ok := presence.ParseState(s)
		assert.True(t, ok, s)
		assert.Equal(t, presence.State(s), st)
	}
	for _, s := range []string{"", "Viewing", "TYPING", "away", " idle", "idle "} {
		st, ok := presence.ParseState(s)
		assert.False(t, ok, "%q", s)
		assert.Empty(t, st)
	}
}

// TestSetRemoveReportChanges: Set and Remove tell whether the room's
// presence changed, so that no frame is sent for nothing.
func TestSetRemoveReportChanges(t *testing.T) {
	tr := presence.NewTracker()
	assert.True(t, tr.Set("r1", ann1), "a new device is a change")
	assert.False(t, tr.Set("r1", ann1), "the same state again is not")

	typing := onTask(ann1, "t_1", false)
	typing.State = presence.Typing
	assert.True(t, tr.Set("r1", typing), "another state is a change")
	assert.False(t, tr.Set("r1", typing))
	other := onTask(typing, "t_2", false)
	assert.True(t, tr.Set("r1", other), "another task is a change")

	assert.Equal(t, []presence.Member{member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 1, "t_2")}, tr.Members("r1", false))
	assert.Empty(t, tr.Members("r2", false), "rooms are apart")

	assert.False(t, tr.Remove("r1", "s-unknown"), "removing an unknown device changes nothing")
	assert.False(t, tr.Remove("r2", ann1.Session), "nor does removing from another room")
	assert.True(t, tr.Remove("r1", ann1.Session))
	assert.False(t, tr.Remove("r1", ann1.Session), "removing twice reports once")
	assert.Empty(t, tr.Members("r1", false))
	assert.Empty(t, tr.LocalRooms(), "an empty room is forgotten")
	assert.Equal(t, []presence.Device{}, tr.Local("r1"))
}

func TestLocal(t *testing.T) {
	tr := presence.NewTracker()
	tr.Set("r1", bob1)
	tr.Set("r1", ann2)
	tr.Set("r1", ann1)
	tr.Set("r2", ann1)
	assert.Equal(t, []presence.Device{ann1, ann2, bob1}, tr.Local("r1"), "local devices, by session")
	rooms := tr.LocalRooms()
	slices.Sort(rooms)
	assert.Equal(t, []string{"r1", "r2"}, rooms)

	// Remote devices are not local.
	tr.Merge("r3", "node9", presence.Announcement{Devices: []presence.Device{bob1}, TTL: 1000}, time.Now())
	assert.Equal(t, []presence.Device{}, tr.Local("r3"))
	rooms = tr.LocalRooms()
	slices.Sort(rooms)
	assert.Equal(t, []string{"r1", "r2"}, rooms)
}

// TestSeveralDevices: one entry per person, with the number of devices and
// the busiest device's state: typing > viewing > idle.
func TestSeveralDevices(t *testing.T) {
	typing := onTask(dev("s-ann-3", "ann", "Ann Staff", dealroom.Staff, presence.Typing), "t_9", false)
	for _, tc := range []struct {
		name    string
		devices []presence.Device
		want    presence.Member
	}{
		{"one viewing", []presence.Device{ann1}, member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, "")},
		{"one idle", []presence.Device{ann2}, member("ann", "Ann Staff", dealroom.Staff, presence.Idle, 1, "")},
		{"viewing beats idle", []presence.Device{ann2, ann1}, member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 2, "")},
		{"viewing beats idle, other order", []presence.Device{ann1, ann2}, member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 2, "")},
		{"typing beats all", []presence.Device{ann1, typing, ann2}, member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 3, "t_9")},
		{"typing beats all, other order", []presence.Device{typing, ann2, ann1}, member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 3, "t_9")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := presence.Aggregate(slices.Clone(tc.devices), false)
			assert.Equal(t, []presence.Member{tc.want}, got)
		})
	}

	// Through the tracker: two local devices and one on another instance
	// are three devices of one person.
	tr := presence.NewTracker()
	tr.Set("r", ann1)
	tr.Set("r", ann2)
	assert.Equal(t, []presence.Member{member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 2, "")}, tr.Members("r", false))
	tr.Merge("r", "node2", presence.Announcement{Devices: []presence.Device{typing}, TTL: 10_000}, time.Now())
	assert.Equal(t, []presence.Member{member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 3, "t_9")}, tr.Members("r", false))
	tr.Remove("r", ann1.Session)
	assert.Equal(t, []presence.Member{member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 2, "t_9")}, tr.Members("r", false))
}

// TestTiesResolveTheSameWay: two devices typing on different tasks show
// the same task whatever order they are given in.
func TestTiesResolveTheSameWay(t *testing.T) {
	a := onTask(dev("s-a", "ann", "Ann", dealroom.Staff, presence.Typing), "t_a", false)
	b := onTask(dev("s-b", "ann", "Ann", dealroom.Staff, presence.Typing), "t_b", false)
	one := presence.Aggregate([]presence.Device{a, b}, false)
	two := presence.Aggregate([]presence.Device{b, a}, false)
	assert.Equal(t, one, two)
	require.Len(t, one, 1)
	assert.Equal(t, 2, one[0].Devices)
}

// TestCustomerView: customers never learn of internal tasks: work on one
// shows as viewing, without the task; staff see it all.
func TestCustomerView(t *testing.T) {
	internalTyping := onTask(dev("s-1", "ann", "Ann Staff", dealroom.Staff, presence.Typing), "t_internal", true)
	internalViewing := onTask(dev("s-2", "ann", "Ann Staff", dealroom.Staff, presence.Viewing), "t_internal2", true)
	internalIdle := onTask(dev("s-3", "ann", "Ann Staff", dealroom.Staff, presence.Idle), "t_internal3", true)
	sharedTyping := onTask(dev("s-4", "ann", "Ann Staff", dealroom.Staff, presence.Typing), "t_shared", false)
	for _, tc := range []struct {
		name            string
		devices         []presence.Device
		staff, customer presence.Member
	}{
		{"typing on an internal task", []presence.Device{internalTyping},
			member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 1, "t_internal"),
			member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, "")},
		{"viewing an internal task", []presence.Device{internalViewing},
			member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, "t_internal2"),
			member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, "")},
		{"idle on an internal task", []presence.Device{internalIdle},
			member("ann", "Ann Staff", dealroom.Staff, presence.Idle, 1, "t_internal3"),
			member("ann", "Ann Staff", dealroom.Staff, presence.Idle, 1, "")},
		{"typing on a shared task", []presence.Device{sharedTyping},
			member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 1, "t_shared"),
			member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 1, "t_shared")},
		{"internal typing and shared typing", []presence.Device{internalTyping, sharedTyping},
			member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 2, "t_internal"),
			member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 2, "t_shared")},
		{"internal typing and viewing", []presence.Device{internalTyping, ann1WithSession("s-9")},
			member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 2, "t_internal"),
			member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 2, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, []presence.Member{tc.staff}, presence.Aggregate(slices.Clone(tc.devices), false))
			got := presence.Aggregate(slices.Clone(tc.devices), true)
			assert.Equal(t, []presence.Member{tc.customer}, got)
			for _, m := range got {
				assert.NotContains(t, m.TaskID, "internal")
			}
		})
	}

	// The tracker keeps the task for staff while hiding it from customers.
	tr := presence.NewTracker()
	tr.Set("r", internalTyping)
	tr.Merge("r", "node2", presence.Announcement{Devices: []presence.Device{onTask(bob1, "t_internal9", true)}, TTL: 1000}, time.Now())
	assert.Equal(t, []presence.Member{
		member("ann", "Ann Staff", dealroom.Staff, presence.Typing, 1, "t_internal"),
		member("bob", "Bob Buyer", dealroom.Customer, presence.Viewing, 1, "t_internal9"),
	}, tr.Members("r", false))
	assert.Equal(t, []presence.Member{
		member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, ""),
		member("bob", "Bob Buyer", dealroom.Customer, presence.Viewing, 1, ""),
	}, tr.Members("r", true))
}

func ann1WithSession(s string) presence.Device {
	d := ann1
	d.Session = s
	return d
}

// TestMergeAndExpire: other instances' devices count until their
// announcement expires; a renewal extends it, an empty announcement ends
// it at once.
func TestMergeAndExpire(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tr := presence.NewTracker()
	tr.Set("r", ann1)
	a := presence.Announcement{Devices: []presence.Device{bob1}, TTL: 3000}

	assert.True(t, tr.Merge("r", "node2", a, t0), "a new instance's devices are a change")
	assert.Equal(t, []presence.Member{
		member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, ""),
		member("bob", "Bob Buyer", dealroom.Customer, presence.Viewing, 1, ""),
	}, tr.Members("r", false))
	assert.Equal(t, []presence.Device{ann1}, tr.Local("r"), "remote devices are not announced again")

	// A renewal with the same devices is no change but extends the TTL.
	assert.False(t, tr.Merge("r", "node2", a, t0.Add(2*time.Second)))
	assert.Empty(t, tr.Expire(t0.Add(4*time.Second)), "renewed at t0+2s: valid until t0+5s")
	assert.Len(t, tr.Members("r", false), 2)

	// Another instance's announcement adds to it.
	c := presence.Announcement{Devices: []presence.Device{dev("s-cat", "cat", "Cat", dealroom.Customer, presence.Idle)}, TTL: 10_000}
	assert.True(t, tr.Merge("r", "node3", c, t0.Add(2*time.Second)))
	assert.Len(t, tr.Members("r", false), 3)

	// A changed announcement is a change and replaces the old one.
	bobTyping := bob1
	bobTyping.State = presence.Typing
	assert.True(t, tr.Merge("r", "node2", presence.Announcement{Devices: []presence.Device{bobTyping}, TTL: 3000}, t0.Add(2*time.Second)))
	assert.Equal(t, member("bob", "Bob Buyer", dealroom.Customer, presence.Typing, 1, ""), tr.Members("r", false)[1])

	// Just before the expiry nothing goes; at it node2's devices go.
	assert.Empty(t, tr.Expire(t0.Add(5*time.Second-time.Nanosecond)))
	assert.Equal(t, []string{"r"}, tr.Expire(t0.Add(5*time.Second)))
	assert.Equal(t, []presence.Member{
		member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, ""),
		member("cat", "Cat", dealroom.Customer, presence.Idle, 1, ""),
	}, tr.Members("r", false))
	assert.Empty(t, tr.Expire(t0.Add(6*time.Second)), "nothing more to expire")
	assert.Equal(t, []string{"r"}, tr.Expire(t0.Add(12*time.Second)))
	assert.Equal(t, []presence.Member{member("ann", "Ann Staff", dealroom.Staff, presence.Viewing, 1, "")}, tr.Members("r", false))

	// A room known only from another instance is forgotten when it expires.
	assert.True(t, tr.Merge("only-remote", "node2", a, t0))
	assert.Equal(t, []string{"only-remote"}, tr.Expire(t0.Add(time.Hour)))
	assert.Empty(t, tr.Members("only-remote", false))
	assert.Empty(t, tr.Expire(t0.Add(2*time.Hour)))
}

// TestEmptyAnnouncement: an instance that holds no device of a room any
// more says so, and its devices leave at once.
func TestEmptyAnnouncement(t *testing.T) {
	now := time.Now()
	tr := presence.NewTracker()
	assert.False(t, tr.Merge("r", "node2", presence.Announcement{Devices: []presence.Device{}, TTL: 1000}, now),
		"an empty announcement of an instance not heard of is no change")
	assert.False(t, tr.Merge("r", "node2", presence.Announcement{}, now))
	assert.Empty(t, tr.Members("r", false))

	require.True(t, tr.Merge("r", "node2", presence.Announcement{Devices: []presence.Device{bob1, ann1}, TTL: 1000}, now))
	require.True(t, tr.Merge("r", "node3", presence.Announcement{Devices: []presence.Device{ann2}, TTL: 1000}, now))
	assert.Len(t, tr.Members("r", false), 2)

	assert.True(t, tr.Merge("r", "node2", presence.Announcement{Devices: []presence.Device{}, TTL: 1000}, now))
	assert.Equal(t, []presence.Member{member("ann", "Ann Staff", dealroom.Staff, presence.Idle, 1, "")}, tr.Members("r", false),
		"node2's devices left, node3's stay")
	assert.False(t, tr.Merge("r", "node2", presence.Announcement{Devices: nil, TTL: 1000}, now), "saying it twice changes nothing")
	assert.True(t, tr.Merge("r", "node3", presence.Announcement{}, now))
	assert.Empty(t, tr.Members("r", false))
	assert.Empty(t, tr.Expire(now.Add(time.Hour)), "nothing was left to expire")
}

// TestOrderByName: members are ordered by name, then by user id.
func TestOrderByName(t *testing.T) {
	devices := []presence.Device{
		dev("s1", "u3", "Zed", dealroom.Staff, presence.Viewing),
		dev("s2", "u2", "Amy", dealroom.Customer, presence.Idle),
		dev("s3", "u9", "Mia", dealroom.Staff, presence.Typing),
		dev("s4", "u1", "Mia", dealroom.Customer, presence.Viewing),
		dev("s5", "u2", "Amy", dealroom.Customer, presence.Viewing),
	}
	var got []string
	for _, m := range presence.Aggregate(devices, false) {
		got = append(got, m.Name+"/"+m.UserID)
	}
	assert.Equal(t, []string{"Amy/u2", "Mia/u1", "Mia/u9", "Zed/u3"}, got)

	tr := presence.NewTracker()
	now := time.Now()
	tr.Set("r", devices[0])
	tr.Merge("r", "n2", presence.Announcement{Devices: devices[1:3], TTL: 1000}, now)
	tr.Merge("r", "n3", presence.Announcement{Devices: devices[3:], TTL: 1000}, now)
	got = nil
	for _, m := range tr.Members("r", true) {
		got = append(got, m.Name+"/"+m.UserID)
	}
	assert.Equal(t, []string{"Amy/u2", "Mia/u1", "Mia/u9", "Zed/u3"}, got)
	assert.Equal(t, []presence.Member{}, presence.Aggregate(nil, false), "nobody: an empty list, not null")
}

func TestAnnouncementWire(t *testing.T) {
	a := presence.Announcement{Devices: []presence.Device{onTask(ann1, "t_1", true), bob1}, TTL: 30_000, Query: true}
	b, err := presence.DecodeAnnouncement(a.Encode())
	require.NoError(t, err)
	assert.Equal(t, a, b)
	empty := presence.Announcement{Devices: []presence.Device{}}
	assert.JSONEq(t, `{"devices":[],"ttl_ms":0}`, string(empty.Encode()), "an empty announcement names no device")
	_, err = presence.DecodeAnnouncement([]byte(`{"devices":`))
	assert.Error(t, err)
}

// TestAnnouncementsOutOfOrder: an instance's announcements may arrive in
// another order than it made them (they go out from several goroutines
// over several connections); the older one (by Seq) does not undo the
// newer, also when the newer said the instance holds no device any more.
// An announcement without Seq (an instance from before it) is taken as
// it comes.
func TestAnnouncementsOutOfOrder(t *testing.T) {
	now := time.Now()
	sender, tr := presence.NewTracker(), presence.NewTracker()
	none, first := sender.Snapshot("r")
	sender.Set("r", bob1)
	devices, second := sender.Snapshot("r")
	require.Greater(t, second, first, "a later snapshot has a larger seq")
	require.Equal(t, []presence.Device{bob1}, devices)

	assert.True(t, tr.Merge("r", "node2", presence.Announcement{Devices: devices, Seq: second, TTL: 30_000}, now))
	assert.False(t, tr.Merge("r", "node2", presence.Announcement{Devices: none, Seq: first, TTL: 30_000}, now),
		"the older announcement, arriving last, changes nothing")
	assert.Len(t, tr.Members("r", false), 1, "Bob stays")

	sender.Remove("r", bob1.Session)
	gone, third := sender.Snapshot("r")
	assert.True(t, tr.Merge("r", "node2", presence.Announcement{Devices: gone, Seq: third, TTL: 30_000}, now))
	assert.Empty(t, tr.Members("r", false))
	assert.False(t, tr.Merge("r", "node2", presence.Announcement{Devices: devices, Seq: second, TTL: 30_000}, now),
		"after the instance said it holds none, its older announcement does not bring Bob back")
	assert.Empty(t, tr.Members("r", false))
	assert.Empty(t, tr.Expire(now.Add(time.Minute)), "what is remembered of an empty announcement expires without a change")

	assert.True(t, tr.Merge("r", "old", presence.Announcement{Devices: devices, TTL: 30_000}, now))
	assert.True(t, tr.Merge("r", "old", presence.Announcement{Devices: []presence.Device{}, TTL: 30_000}, now), "no seq: taken as it comes")
	assert.True(t, tr.Merge("r", "old", presence.Announcement{Devices: devices, TTL: 30_000}, now))

	restarted := presence.NewTracker()
	_, later := restarted.Snapshot("r")
	assert.Greater(t, later, third, "an instance started again under the same name counts on from the clock")
}
