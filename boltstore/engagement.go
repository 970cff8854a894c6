package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

// bEngagement holds the engagement records (room.EngagementStore), made by
// the first write (reads treat a missing bucket as empty):
//
//	room 0 "p" 0 user             → visitorRecord
//	room 0 "f" 0 attachment 0 user → fileOpenRecord
//	room 0 "d" 0 day              → customerDayRecord (the customer side's)
//
// A room's people, its files (by attachment, then user) and a span of its
// days are each one prefix or range scan.
var bEngagement = []byte("engagement")

var _ room.EngagementStore = (*Store)(nil)

type visitorRecord struct {
	Side       dealroom.Kind           `json:"side"`
	FirstVisit time.Time               `json:"first,omitzero"`
	LastVisit  time.Time               `json:"last,omitzero"`
	Visits     int                     `json:"visits"`
	Devices    map[room.DeviceKind]int `json:"devices"`
	TimeMS     int64                   `json:"ms"`
}

type fileOpenRecord struct {
	Side      dealroom.Kind `json:"side"`
	Views     int           `json:"views"`
	Downloads int           `json:"downloads"`
	First     time.Time     `json:"first"`
	Last      time.Time     `json:"last"`
}

type customerDayRecord struct {
	Visits int `json:"visits"`
	Files  int `json:"files"`
}

// AddEngagement implements room.EngagementStore: one transaction beside
// the room writer, whatever the delta holds (the Tally gathers many
// signals into one), so a batch costs one commit.
func (s *Store) AddEngagement(ctx context.Context, d room.EngagementDelta) error {
	if d.Empty() {
		return nil
	}
	return s.writeAside(ctx, bEngagement, func(b *bolt.Bucket) error {
		for _, p := range d.People {
			k := key(p.Room, "p", p.UserID)
			r, err := getJSON[visitorRecord](b, k)
			if err != nil {
				return err
			}
			if r == nil {
				r = &visitorRecord{}
			}
			if r.Devices == nil {
				r.Devices = map[room.DeviceKind]int{}
			}
			r.Side = p.Side
			for dk, n := range p.Devices {
				r.Devices[dk] += n
				r.Visits += n
			}
			r.TimeMS += p.Time.Milliseconds()
			if !p.FirstVisit.IsZero() && (r.FirstVisit.IsZero() || p.FirstVisit.Before(r.FirstVisit)) {
				r.FirstVisit = p.FirstVisit.UTC()
			}
			if p.LastVisit.After(r.LastVisit) {
				r.LastVisit = p.LastVisit.UTC()
			}
			if err := putJSON(b, k, r); err != nil {
				return err
			}
		}
		for _, f := range d.Files {
			k := key(f.Room, "f", f.AttachmentID, f.UserID)
			r, err := getJSON[fileOpenRecord](b, k)
			if err != nil {
				return err
			}
			if r == nil {
				r = &fileOpenRecord{First: f.First.UTC()}
			}
			r.Side = f.Side
			r.Views += f.Views
			r.Downloads += f.Downloads
			if f.First.Before(r.First) {
				r.First = f.First.UTC()
			}
			if f.Last.After(r.Last) {
				r.Last = f.Last.UTC()
			}
			if err := putJSON(b, k, r); err != nil {
				return err
			}
		}
		for _, x := range d.Days {
			k := key(x.Room, "d", x.Day)
			r, err := getJSON[customerDayRecord](b, k)
			if err != nil {
				return err
			}
			if r == nil {
				r = &customerDayRecord{}
			}
			r.Visits += x.Visits
			r.Files += x.Files
			if err := putJSON(b, k, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// RoomEngagement implements room.EngagementStore.
func (s *Store) RoomEngagement(ctx context.Context, roomID string) (room.RoomEngagement, error) {
	return readTx(s, func(tx *bolt.Tx) (room.RoomEngagement, error) {
		out := room.RoomEngagement{People: []room.PersonEngagement{}, Files: []room.FileEngagement{}}
		b := tx.Bucket(bEngagement)
		if b == nil {
			return out, nil
		}
		c := b.Cursor()
		p := prefix(roomID, "p")
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			r, err := decodeJSON[visitorRecord](k, v)
			if err != nil {
				return out, err
			}
			out.People = append(out.People, room.PersonEngagement{UserID: string(k[len(p):]), Side: r.Side,
				FirstVisit: r.FirstVisit, LastVisit: r.LastVisit, Visits: r.Visits, Devices: r.Devices,
				Time: time.Duration(r.TimeMS) * time.Millisecond})
		}
		p = prefix(roomID, "f")
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			r, err := decodeJSON[fileOpenRecord](k, v)
			if err != nil {
				return out, err
			}
			at, user, _ := bytes.Cut(k[len(p):], []byte{0})
			out.Files = append(out.Files, room.FileEngagement{AttachmentID: string(at), UserID: string(user),
				Side: r.Side, Views: r.Views, Downloads: r.Downloads, First: r.First, Last: r.Last})
		}
		return out, nil
	})
}

// CustomerDays implements room.EngagementStore: a range scan per room.
func (s *Store) CustomerDays(ctx context.Context, rooms []string, from, to string) (map[string][]room.DayActivity, error) {
	return readTx(s, func(tx *bolt.Tx) (map[string][]room.DayActivity, error) {
		out := map[string][]room.DayActivity{}
		b := tx.Bucket(bEngagement)
		if b == nil {
			return out, nil
		}
		c := b.Cursor()
		for _, r := range rooms {
			p := prefix(r, "d")
			end := key(r, "d", to)
			for k, v := c.Seek(key(r, "d", from)); k != nil && bytes.HasPrefix(k, p) && bytes.Compare(k, end) <= 0; k, v = c.Next() {
				d, err := decodeJSON[customerDayRecord](k, v)
				if err != nil {
					return nil, err
				}
				out[r] = append(out[r], room.DayActivity{Day: string(k[len(p):]), Visits: d.Visits, Files: d.Files})
			}
		}
		return out, nil
	})
}

// decodeJSON decodes the value v of the key k found by a cursor.
func decodeJSON[T any](k, v []byte) (*T, error) {
	var r T
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("boltstore: corrupt record %q: %w", k, err)
	}
	return &r, nil
}
