package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"dealroom/room"
)

// The event log and the messages that refer to it.
//
// Events are kept under room 0 seq (seq as 8 bytes, big-endian), so that a
// room's log is one key range in seq order. Each is stored compressed
// (zstd at its fastest level, about 10 us an event to compress and 7 to
// read back; zipTag, then the zstd frame) when that makes it smaller,
// which an event with text in it always is: a message of 450 characters
// takes about 60% of its JSON. The log is most of the
// file, and its pages are about half full whatever the fill: an event of
// a quarter of a page goes into the middle of a page shared with the next
// room's first events, and bbolt splits a full page of a few large
// values unevenly. Smaller values fit more to a page. A value that begins
// with '{' is the JSON itself (files from before, or an event that did
// not shrink).
//
// A message is the data of the event that last wrote it (posted, edited,
// deleted), so bMessages holds the seq of that event (8 bytes) under room
// 0 message instead of the message again: a message costs its text once
// on disk. A value that is a JSON document, from older files, is the
// message itself.

// zipTag begins a compressed event.
const zipTag byte = 1

// seqKey is the key of the room's event of seq seq.
func seqKey(roomID string, seq int64) []byte {
	return binary.BigEndian.AppendUint64(prefix(roomID), uint64(seq))
}

// zipper compresses the events the writer appends.
type zipper struct{ enc *zstd.Encoder }

// minZip is the size of the smallest event compressed: compressing costs
// the writer about 10 us whatever the size, and a short event, mostly its
// envelope, would save only a few hundred bytes.
const minZip = 512

// pack returns the stored form of an event's JSON: compressed when it is
// long enough and that makes it smaller.
func (z *zipper) pack(raw []byte) ([]byte, error) {
	if len(raw) < minZip {
		return raw, nil
	}
	if z.enc == nil {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, err
		}
		z.enc = enc
	}
	out := z.enc.EncodeAll(raw, []byte{zipTag})
	if len(out) >= len(raw) {
		return raw, nil
	}
	return out, nil
}

// unzip decompresses events for every read; it is safe for concurrent
// use and holds no state between reads, so one serves every store.
var unzip = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true))
})

// unpack returns the JSON of a stored event.
func unpack(raw []byte) ([]byte, error) {
	if len(raw) == 0 || raw[0] != zipTag {
		return raw, nil
	}
	dec, err := unzip()
	if err != nil {
		return nil, err
	}
	out, err := dec.DecodeAll(raw[1:], nil)
	if err != nil {
		return nil, fmt.Errorf("boltstore: corrupt event: %w", err)
	}
	return out, nil
}

// decodeEvent decodes a stored event into v (a room.Event, or a part of
// one).
func decodeEvent(raw []byte, v any) error {
	doc, err := unpack(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(doc, v)
}

// putEvent appends the event to its room's log.
func putEvent(tx *bolt.Tx, z *zipper, ev room.Event) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if raw, err = z.pack(raw); err != nil {
		return err
	}
	return packed(tx, bEvents).Put(seqKey(ev.RoomID, ev.Seq), raw)
}

func getEvent(tx *bolt.Tx, roomID string, seq int64) (room.Event, error) {
	var ev room.Event
	raw := tx.Bucket(bEvents).Get(seqKey(roomID, seq))
	if raw == nil {
		return ev, fmt.Errorf("boltstore: event %d of room %s is missing", seq, roomID)
	}
	if err := decodeEvent(raw, &ev); err != nil {
		return ev, fmt.Errorf("boltstore: corrupt event %d of room %s: %w", seq, roomID, err)
	}
	return ev, nil
}

// eventData returns the data of the room's event of seq seq.
func eventData(tx *bolt.Tx, roomID string, seq int64) (json.RawMessage, error) {
	raw := tx.Bucket(bEvents).Get(seqKey(roomID, seq))
	if raw == nil {
		return nil, fmt.Errorf("boltstore: event %d of room %s is missing", seq, roomID)
	}
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	if err := decodeEvent(raw, &ev); err != nil {
		return nil, fmt.Errorf("boltstore: corrupt event %d of room %s: %w", seq, roomID, err)
	}
	return ev.Data, nil
}

// putMessageRef records that the message's current state is the data of
// the event of seq seq.
func putMessageRef(tx *bolt.Tx, roomID, id string, seq int64) error {
	return packed(tx, bMessages).Put(key(roomID, id), binary.BigEndian.AppendUint64(nil, uint64(seq)))
}

// getMessage returns a message of the room, nil when there is none.
func getMessage(tx *bolt.Tx, roomID, id string) (*room.Message, error) {
	raw := tx.Bucket(bMessages).Get(key(roomID, id))
	if raw == nil {
		return nil, nil
	}
	return messageOf(tx, roomID, raw)
}

// messageOf decodes a value of bMessages of the room: the seq of the
// event whose data is the message, or (in older files) the message.
func messageOf(tx *bolt.Tx, roomID string, raw []byte) (*room.Message, error) {
	doc := []byte(raw)
	if len(raw) == 8 && raw[0] != '{' {
		var err error
		if doc, err = eventData(tx, roomID, int64(binary.BigEndian.Uint64(raw))); err != nil {
			return nil, err
		}
	}
	var m room.Message
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("boltstore: corrupt message of room %s: %w", roomID, err)
	}
	return &m, nil
}
