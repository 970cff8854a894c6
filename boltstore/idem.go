package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom/room"
)

// Idempotency records. A command with a key leaves a record in bIdem under
// room 0 room.IdempotencyID(actor, key): the seq of its event, the
// request's fingerprint and the command's time. A record past
// room.KeyRetention is forgotten (a lookup checks its time) and removed by
// the sweep: each commit reads the next few records of bIdem in key order
// and removes the expired ones (sweepKeys). Files written before kept an
// index of the records by time (bIdemAt), which cost each commit three
// more pages to write; it is dropped when such a file is opened.
//
// Files written before room.IdempotencyID keyed the records room 0 actor
// 0 key (legacyIdemKey). Such a file is marked when it is opened with the
// time of its newest record (metaLegacyKeys); until that record expires,
// a key not found under the new rule is looked up under the old one too,
// so that an upgrade cannot make a retry of an acknowledged request
// append a second event. After that, every old record has expired and is
// only waiting for the sweep, which reads every record whatever its key.

// idemRecord is an idempotency record. Records are stored in binary
// (marshal); older files hold them as JSON, which unmarshal reads too.
type idemRecord struct {
	Seq         int64  `json:"seq"`
	Fingerprint string `json:"fingerprint"`
	// At is when the key was recorded (the command's time); zero in
	// records from before keys expired.
	At time.Time `json:"at,omitzero"`
}

// The binary forms of a record: a tag, the seq and the time (unix ns),
// 8 bytes each, big-endian, and the fingerprint: its bytes when it is
// lower-case hex (as room.Service makes them), else as it is. 33 bytes
// for a record that takes about 90 as JSON.
const (
	idemHex byte = 1
	idemRaw byte = 2
)

// marshal encodes the record in binary.
func (r idemRecord) marshal() []byte {
	b := make([]byte, 17, 17+len(r.Fingerprint))
	b[0] = idemRaw
	binary.BigEndian.PutUint64(b[1:], uint64(r.Seq))
	binary.BigEndian.PutUint64(b[9:], uint64(r.At.UnixNano()))
	if fp, err := hex.DecodeString(r.Fingerprint); err == nil && hex.EncodeToString(fp) == r.Fingerprint {
		b[0] = idemHex
		return append(b, fp...)
	}
	return append(b, r.Fingerprint...)
}

// unmarshal decodes a record in either form.
func (r *idemRecord) unmarshal(raw []byte) error {
	if len(raw) == 0 || raw[0] == '{' {
		return json.Unmarshal(raw, r)
	}
	if len(raw) < 17 || (raw[0] != idemHex && raw[0] != idemRaw) {
		return fmt.Errorf("boltstore: corrupt idempotency record %x", raw)
	}
	r.Seq = int64(binary.BigEndian.Uint64(raw[1:]))
	r.At = time.Unix(0, int64(binary.BigEndian.Uint64(raw[9:])))
	r.Fingerprint = string(raw[17:])
	if raw[0] == idemHex {
		r.Fingerprint = hex.EncodeToString(raw[17:])
	}
	return nil
}

// Keys of bMeta for idempotency records.
var (
	// metaIdemRule is set ("1") once the file's records are keyed by
	// room.IdempotencyID.
	metaIdemRule = []byte("idem_rule")
	// metaLegacyKeys holds the time (unix ns, 8 bytes) of the newest
	// record of the old rule, if the file has any.
	metaLegacyKeys = []byte("idem_legacy_until")
)

// idemKey is the key of a command's record.
func idemKey(cmd room.Command) []byte {
	return append(prefix(cmd.Room), room.IdempotencyID(cmd.Actor, cmd.Key)...)
}

// legacyIdemKey is the key of a command's record in files from before
// room.IdempotencyID.
func legacyIdemKey(cmd room.Command) []byte { return key(cmd.Room, cmd.Actor, cmd.Key) }

// markIdemRule records, in a file opened for the first time by this
// code, whether it holds records of the old rule, and returns the time
// of the newest of them (zero: none).
func markIdemRule(tx *bolt.Tx) (time.Time, error) {
	meta := tx.Bucket(bMeta)
	if meta.Get(metaIdemRule) == nil {
		// A file of the old rule indexed its records by age (they
		// expire; older ones have no time and are forgotten already).
		if byAge := tx.Bucket(bIdemAt); byAge != nil {
			if k, _ := byAge.Cursor().Last(); k != nil {
				if err := meta.Put(metaLegacyKeys, k[:8]); err != nil {
					return time.Time{}, err
				}
			}
		}
		if err := meta.Put(metaIdemRule, []byte("1")); err != nil {
			return time.Time{}, err
		}
	}
	if v := meta.Get(metaLegacyKeys); len(v) == 8 {
		return time.Unix(0, int64(binary.BigEndian.Uint64(v))), nil
	}
	return time.Time{}, nil
}

// findKey returns the command's idempotency record and its key, nil when
// there is none.
func (s *Store) findKey(tx *bolt.Tx, cmd room.Command) (*idemRecord, []byte, error) {
	b := tx.Bucket(bIdem)
	k := idemKey(cmd)
	raw := b.Get(k)
	if raw == nil && !s.legacyKeys.IsZero() && !room.KeyExpired(s.legacyKeys, commandTime(cmd)) {
		k = legacyIdemKey(cmd)
		raw = b.Get(k)
	}
	if raw == nil {
		return nil, nil, nil
	}
	var rec idemRecord
	if err := rec.unmarshal(raw); err != nil {
		return nil, nil, err
	}
	return &rec, k, nil
}

// replayKey answers a command whose key was used before: with the first
// event (Replayed), or ErrKeyReused for another request. done is false
// when the key is new or forgotten, and the command is to be carried out.
func (s *Store) replayKey(tx *bolt.Tx, cmd room.Command) (res result, done bool, err error) {
	rec, _, err := s.findKey(tx, cmd)
	switch {
	case err != nil:
		return res, false, err
	case rec == nil, room.KeyExpired(rec.At, commandTime(cmd)):
		// New, or forgotten: carried out anew, and recorded again (the
		// sweep leaves a record newer than its index entry).
		return res, false, nil
	case rec.Fingerprint != cmd.Fingerprint:
		return result{err: room.ErrKeyReused}, true, nil
	}
	ev, err := getEvent(tx, cmd.Room, rec.Seq)
	if err != nil {
		return res, false, err
	}
	return result{Executed: room.Executed{Event: ev, Replayed: true}}, true, nil
}

// recordKey records the command's key for its event of seq seq.
func recordKey(tx *bolt.Tx, cmd room.Command, seq int64) error {
	at := commandTime(cmd)
	k := idemKey(cmd)
	raw := idemRecord{Seq: seq, Fingerprint: cmd.Fingerprint, At: at}.marshal()
	return tx.Bucket(bIdem).Put(k, raw)
}

// sweepBatch is how many idempotency records a commit reads for the
// sweep. It must exceed the keys a commit records, or records would pile
// up faster than the walk goes: a commit records one key per command at
// most, and most commits hold one or two commands.
const sweepBatch = 64

// sweepKeys reads the next n idempotency records in key order, from
// where the last sweep stopped (s.sweepFrom), and removes those expired at
// now. At the end of the bucket the next sweep starts over, as it does
// after a restart (the place is kept in memory only). A record is thus
// removed at most one walk of the bucket after it expired (at 1,000 keyed
// commands a second, 86 million records, a walk of about 22 minutes);
// until then a lookup finds it expired. Only the writer calls it.
func (s *Store) sweepKeys(tx *bolt.Tx, now time.Time, n int) error {
	if now.IsZero() {
		return nil
	}
	idem := tx.Bucket(bIdem)
	c := idem.Cursor()
	k, v := c.First()
	if s.sweepFrom != nil {
		k, v = c.Seek(s.sweepFrom)
	}
	var expired [][]byte
	for ; k != nil && n > 0; n-- {
		// A record this code cannot read is left alone: housekeeping must
		// not fail the commit it rides on (the lookup reports it).
		var rec idemRecord
		if rec.unmarshal(v) == nil && room.KeyExpired(rec.At, now) {
			expired = append(expired, bytes.Clone(k))
		}
		k, v = c.Next()
	}
	s.sweepFrom = bytes.Clone(k) // nil at the end: start over
	for _, k := range expired {
		if err := idem.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
