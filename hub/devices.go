package hub

import "dealroom/presence"

// DeviceWatch is told what each device of this instance does in a room's
// presence: d.State is viewing, typing or idle when the device joined the
// room's presence or said what it does, and "" when it left (it
// unsubscribed, was removed, or disconnected). agent is the User-Agent
// the device connected with. It is called on the hub's paths (once, with
// the room's feed locked) and must not block nor call the hub (engagement
// counts it: room.Tally).
type DeviceWatch func(room string, d presence.Device, agent string)

// WatchDevices has fn told of every device's presence from now on (nil:
// nobody is).
func (h *Hub) WatchDevices(fn DeviceWatch) {
	if fn == nil {
		h.watch.Store(nil)
		return
	}
	h.watch.Store(&fn)
}

func (h *Hub) watchDevice(room string, d presence.Device, agent string) {
	if fn := h.watch.Load(); fn != nil {
		(*fn)(room, d, agent)
	}
}

// SetAgent records the User-Agent the device connected with, for
// DeviceWatch. Call it before the session subscribes to anything.
func (s *Session) SetAgent(ua string) { s.agent = ua }
