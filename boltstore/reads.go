package boltstore

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
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
// written beside the room writer, as the sessions are. Markers move often
// (every device viewing a room sends one as events arrive) and one that
// does not move is the common case, so it is checked first with a read,
// which costs no commit; the writes of concurrent markers share one
// transaction and its fsyncs (bbolt's Batch: up to 10 ms of company).
// Batch may run fn more than once, which a marker that only moves
// forward allows.
func (s *Store) SetRead(ctx context.Context, roomID, user string, seq int64, at time.Time) (room.ReadMarker, bool, error) {
	if err := ctx.Err(); err != nil {
		return room.ReadMarker{}, false, dealroom.Unavailable(err)
	}
	k := key(roomID, user)
	current := func(tx *bolt.Tx) (*readRecord, bool, error) {
		old, err := getJSON[readRecord](tx.Bucket(bReads), k)
		return old, err == nil && (old != nil && old.Seq >= seq || old == nil && seq <= 0), err
	}
	var out room.ReadMarker
	moved := false
	err := s.db.View(func(tx *bolt.Tx) error {
		old, stays, err := current(tx)
		if stays && old != nil {
			out = old.marker(user)
		}
		moved = !stays
		return err
	})
	if err == nil && moved {
		err = s.db.Batch(func(tx *bolt.Tx) error {
			old, stays, err := current(tx)
			if err != nil || stays {
				if old != nil {
					out = old.marker(user)
				}
				moved = false
				return err
			}
			r := readRecord{Seq: seq, At: at.UTC()}
			out, moved = r.marker(user), true
			return putJSON(tx.Bucket(bReads), k, r)
		})
	}
	if err != nil {
		return room.ReadMarker{}, false, dealroom.Unavailable(err)
	}
	out.UserID = user
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
