package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/session"
)

// The browser sessions (package session), beside the rooms.
var (
	bSessions     = []byte("sessions")      // session id → sessionRecord
	bUserSessions = []byte("user_sessions") // user 0 created_at (unix ns, 8 bytes) session id → ""
)

var _ session.Store = (*Store)(nil)

// sessionRecord is a session as the file keeps it. The conversions below
// stop the build when session.Session gains a field this lacks.
type sessionRecord struct {
	ID        string         `json:"id"`
	Actor     dealroom.Actor `json:"actor"`
	CSRF      string         `json:"csrf"`
	Via       session.Via    `json:"via"`
	CreatedAt time.Time      `json:"created_at"`
	LastSeen  time.Time      `json:"last_seen"`
	IdleUntil time.Time      `json:"idle_until"`
	ExpiresAt time.Time      `json:"expires_at"`
}

func toSessionRecord(s session.Session) sessionRecord { return sessionRecord(s) }

func (r sessionRecord) session() session.Session { return session.Session(r) }

// userSessionKey orders a user's sessions by their creation.
func userSessionKey(user string, created time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(prefix(user), uint64(created.UnixNano())), id...)
}

// writeSessions runs fn in a write transaction of its own (sessions do not
// go through the room writer: they have no events).
func (s *Store) writeSessions(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return dealroom.Unavailable(err)
	}
	err := s.db.Update(fn)
	if err != nil && dealroom.ErrorCode(err) == dealroom.EINTERNAL {
		return dealroom.Unavailable(err)
	}
	return err
}

// CreateSession implements session.Store. It also cleans away the user's
// ended sessions, so that the file does not keep them for ever.
func (s *Store) CreateSession(ctx context.Context, sess session.Session) error {
	return s.writeSessions(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bSessions)
		if b.Get([]byte(sess.ID)) != nil {
			return dealroom.Errorf(dealroom.ECONFLICT, "session exists")
		}
		if err := dropEndedSessions(tx, sess.Actor.ID, sess.CreatedAt); err != nil {
			return err
		}
		if err := putJSON(b, []byte(sess.ID), toSessionRecord(sess)); err != nil {
			return err
		}
		return tx.Bucket(bUserSessions).Put(userSessionKey(sess.Actor.ID, sess.CreatedAt, sess.ID), nil)
	})
}

// dropEndedSessions removes the user's sessions that are over at now.
func dropEndedSessions(tx *bolt.Tx, user string, now time.Time) error {
	return eachUserSession(tx, user, func(k []byte, r *sessionRecord) error {
		if r != nil && !r.session().Ended(now) {
			return nil
		}
		if r != nil {
			if err := tx.Bucket(bSessions).Delete([]byte(r.ID)); err != nil {
				return err
			}
		}
		return tx.Bucket(bUserSessions).Delete(k)
	})
}

// eachUserSession calls fn with each of the user's index keys and its
// session (nil when the index outlived it), oldest first. fn may delete
// the key.
func eachUserSession(tx *bolt.Tx, user string, fn func(k []byte, r *sessionRecord) error) error {
	p := prefix(user)
	var keys [][]byte
	c := tx.Bucket(bUserSessions).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		id := k[len(p)+8:]
		r, err := getJSON[sessionRecord](tx.Bucket(bSessions), id)
		if err != nil {
			return err
		}
		if err := fn(k, r); err != nil {
			return err
		}
	}
	return nil
}

// Session implements session.Store.
func (s *Store) Session(ctx context.Context, id string) (session.Session, error) {
	r, err := readTx(s, func(tx *bolt.Tx) (*sessionRecord, error) {
		return getJSON[sessionRecord](tx.Bucket(bSessions), []byte(id))
	})
	if err != nil {
		return session.Session{}, err
	}
	if r == nil {
		return session.Session{}, dealroom.NotFound("session", "")
	}
	return r.session(), nil
}

// TouchSession implements session.Store.
func (s *Store) TouchSession(ctx context.Context, id string, seen, idleUntil time.Time) error {
	return s.writeSessions(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bSessions)
		r, err := getJSON[sessionRecord](b, []byte(id))
		if err != nil || r == nil {
			return err
		}
		r.LastSeen, r.IdleUntil = seen, idleUntil
		return putJSON(b, []byte(id), r)
	})
}

// EndSession implements session.Store.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.writeSessions(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bSessions)
		r, err := getJSON[sessionRecord](b, []byte(id))
		if err != nil || r == nil {
			return err
		}
		if err := tx.Bucket(bUserSessions).Delete(userSessionKey(r.Actor.ID, r.CreatedAt, r.ID)); err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
}

// EndUserSessions implements session.Store.
func (s *Store) EndUserSessions(ctx context.Context, user string) ([]string, error) {
	ended := []string{}
	err := s.writeSessions(ctx, func(tx *bolt.Tx) error {
		ended = ended[:0]
		return eachUserSession(tx, user, func(k []byte, r *sessionRecord) error {
			if r != nil {
				ended = append(ended, r.ID)
				if err := tx.Bucket(bSessions).Delete([]byte(r.ID)); err != nil {
					return err
				}
			}
			return tx.Bucket(bUserSessions).Delete(k)
		})
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// UserSessions implements session.Store.
func (s *Store) UserSessions(ctx context.Context, user string) ([]session.Session, error) {
	out := []session.Session{}
	err := s.read(func(tx *bolt.Tx) error {
		return eachUserSession(tx, user, func(_ []byte, r *sessionRecord) error {
			if r != nil {
				out = append(out, r.session())
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SweepSessions implements session.Store: one pass over the sessions (a
// few per person, so a scan is cheap next to how rarely it runs).
func (s *Store) SweepSessions(ctx context.Context, now time.Time) (int, error) {
	return s.sweep(ctx, bSessions, func(_, v []byte) (bool, error) {
		var r sessionRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return false, err
		}
		return r.session().Ended(now), nil
	}, func(tx *bolt.Tx, _, v []byte) error {
		var r sessionRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		return tx.Bucket(bUserSessions).Delete(userSessionKey(r.Actor.ID, r.CreatedAt, r.ID))
	})
}

// sweepAsideBatch bounds the removals of one write transaction of a sweep, so
// that the rooms' writer is never held up for long.
const sweepAsideBatch = 256

// sweep removes the records of the bucket name for which over(key, value)
// holds, in write transactions of sweepAsideBatch removals each, and returns
// how many it removed. remove, when set, removes what goes with such a
// record (its index entries) in the same transaction.
func (s *Store) sweep(ctx context.Context, name []byte, over func(k, v []byte) (bool, error),
	remove func(tx *bolt.Tx, k, v []byte) error) (int, error) {
	removed := 0
	var after []byte
	for {
		var gone [][2][]byte // keys and values
		from := after
		err := s.writeSessions(ctx, func(tx *bolt.Tx) error {
			gone, after = gone[:0], nil
			b := tx.Bucket(name)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if from != nil {
				if k, v = c.Seek(from); k != nil && bytes.Equal(k, from) {
					k, v = c.Next()
				}
			}
			for ; k != nil; k, v = c.Next() {
				ok, err := over(k, v)
				if err != nil {
					return err
				}
				if ok {
					gone = append(gone, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
				}
				if len(gone) == sweepAsideBatch {
					after = bytes.Clone(k)
					break
				}
			}
			for _, kv := range gone {
				if err := b.Delete(kv[0]); err != nil {
					return err
				}
				if remove != nil {
					if err := remove(tx, kv[0], kv[1]); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		removed += len(gone)
		if after == nil {
			return removed, nil
		}
	}
}
