package hub

import (
	"context"
	"time"

	"dealroom/broker"
	"dealroom/presence"
)

// presenceChanged schedules a presence frame for the room's sessions (and,
// for a change of local devices, an announcement to the other instances).
// Frames are paced: at most one per PresenceEvery, slower in big rooms,
// where everybody's arrival would otherwise be sent to everybody.
func (f *feed) presenceChanged(local bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.localDirty = f.localDirty || local
	if f.presenceDirty {
		return
	}
	f.presenceDirty = true
	every := f.h.cfg.PresenceEvery * time.Duration(max(1, len(f.live)/50))
	wait := max(time.Until(f.lastPresence.Add(every)), 0)
	f.presenceTimer = time.AfterFunc(wait, f.flushPresence)
}

func (f *feed) flushPresence() {
	f.mu.Lock()
	f.presenceDirty = false
	f.lastPresence = time.Now()
	local := f.localDirty
	f.localDirty = false
	var staff, customer []byte
	for s := range f.live {
		var fr []byte
		if s.customer {
			if customer == nil {
				customer = presenceFrame(f.room, f.h.presence.Members(f.room, true))
			}
			fr = customer
		} else {
			if staff == nil {
				staff = presenceFrame(f.room, f.h.presence.Members(f.room, false))
			}
			fr = staff
		}
		if !s.sess.q.pushEphemeral(f.room, fr) {
			f.h.Stats.Dropped.Add(1)
		}
	}
	f.mu.Unlock()
	if local {
		f.announce(false)
	}
}

// announce tells the other instances which devices this one holds in the
// room. Renewals (renew) are sent only while there are some; a change is
// always sent, so that the last device's leaving is heard at once.
func (f *feed) announce(renew bool) {
	devices, seq := f.h.presence.Snapshot(f.room)
	if renew && len(devices) == 0 {
		return
	}
	f.h.publishPresence(f.room, presence.Announcement{Devices: devices, Seq: seq})
}

func (h *Hub) publishPresence(room string, a presence.Announcement) {
	a.TTL = h.cfg.PresenceTTL.Milliseconds()
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
	defer cancel()
	if err := h.broker.Publish(ctx, broker.Message{Room: room, Kind: broker.Presence, Origin: h.cfg.Instance, Data: a.Encode()}); err != nil {
		h.log.Debug("cannot publish presence", "room", room, "err", err)
	}
}
