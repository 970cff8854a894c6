package mongostore

import (
	"log/slog"

	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo/options"

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

// ClientOptions returns the options Open gives the driver for uri, with
// its warnings logged to log.
func ClientOptions(uri string, log *slog.Logger) (*options.ClientOptions, error) {
	return clientOptions(uri, config{}, log)
}
