package boltstore

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom/room"
)

// bReads holds the read markers (room.ReadStore): room 0 user → readRecord.
// A room's markers are one prefix scan; a user's marker in a room one key.
var bReads = []byte("reads")

var _ room.ReadStore = (*Store)(nil)

// readRecord is a marker as the file keeps it; the room and user are in
// its key.
type readRecord struct {
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
}

func (r readRecord) marker(user string) room.ReadMarker {
	return room.ReadMarker{UserID: user, Seq: r.Seq, At: r.At}
}

// SetRead implements room.ReadStore. A marker is not an event: it is
// written in a transaction of its own, beside the room writer, as the
// sessions are (writeSessions).
func (s *Store) SetRead(ctx context.Context, roomID, user string, seq int64, at time.Time) (room.ReadMarker, bool, error) {
	var out room.ReadMarker
	moved := false
	err := s.writeSessions(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bReads)
		k := key(roomID, user)
		old, err := getJSON[readRecord](b, k)
		if err != nil {
			return err
		}
		if old != nil && old.Seq >= seq || old == nil && seq <= 0 {
			if old != nil {
				out = old.marker(user)
			}
			out.UserID, moved = user, false
			return nil
		}
		r := readRecord{Seq: seq, At: at.UTC()}
		out, moved = r.marker(user), true
		return putJSON(b, k, r)
	})
	if err != nil {
		return room.ReadMarker{}, false, err
	}
	return out, moved, nil
}

// ReadMarkers implements room.ReadStore.
func (s *Store) ReadMarkers(ctx context.Context, roomID string) ([]room.ReadMarker, error) {
	return readTx(s, func(tx *bolt.Tx) ([]room.ReadMarker, error) {
		p := prefix(roomID)
		out := []room.ReadMarker{}
		c := tx.Bucket(bReads).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			r, err := getJSON[readRecord](tx.Bucket(bReads), k)
			if err != nil {
				return nil, err
			}
			out = append(out, r.marker(string(k[len(p):])))
		}
		return out, nil
	})
}

// UserReadMarkers implements room.ReadStore.
func (s *Store) UserReadMarkers(ctx context.Context, user string, rooms []string) (map[string]room.ReadMarker, error) {
	return readTx(s, func(tx *bolt.Tx) (map[string]room.ReadMarker, error) {
		out := make(map[string]room.ReadMarker, len(rooms))
		b := tx.Bucket(bReads)
		for _, r := range rooms {
			rec, err := getJSON[readRecord](b, key(r, user))
			if err != nil {
				return nil, err
			}
			if rec != nil {
				out[r] = rec.marker(user)
			}
		}
		return out, nil
	})
}
