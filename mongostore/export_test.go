package mongostore

import (
	"go.mongodb.org/mongo-driver/event"

	"dealroom/room"
)

// SetAfterInsert installs a hook that runs right after an event is
// inserted, before the read models are updated; an error it returns ends
// Execute there, as a crash of the process would.
func SetAfterInsert(s *Store, fn func(room.Event) error) { s.afterInsert = fn }

// Clashes returns how often Execute found its seq taken by another writer.
func Clashes(s *Store) int64 { return s.clashes.Load() }

// WithCommandMonitor has the store's client report every command it
// sends.
func WithCommandMonitor(m *event.CommandMonitor) Option {
	return func(c *config) { c.monitor = m }
}
