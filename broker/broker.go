// Package broker is the port through which instances of the server tell
// each other what happened in a room: committed events and presence. It
// only carries news. The store is the truth: a broker may drop messages
// (Redis pub/sub is at-most-once), and the hub repairs any loss from the
// store, because events carry their room's gap-free seq.
//
// Two implementations exist: Bus, in process, for the embedded default and
// for tests, and redisbroker, for several instances. Both pass the
// conformance suite in broker/brokertest.
package broker

import (
	"context"
	"errors"
	"sync"
)

// Kind tells what a message carries.
type Kind uint8

const (
	// Event: one committed room.Event as JSON.
	Event Kind = 1
	// Presence: one instance's presence in a room (see package presence).
	Presence Kind = 2
	// Control: news about sessions rather than a room (a sign-in that
	// ended), on a channel of its own.
	Control Kind = 3
	// Read: a person's read marker in a room moved (see hub/read.go).
	Read Kind = 4
)

// Message is one piece of news about a room.
type Message struct {
	Room string
	Kind Kind
	// Origin names the instance that published the message.
	Origin string
	Data   []byte
}

// Handler receives what a broker delivers. Its methods may be called from
// the broker's goroutines and must not block for long.
type Handler interface {
	// Receive is called with each message of a subscribed room, in the
	// order the broker got them from one publisher (across publishers no
	// order holds). Messages may be lost, never invented.
	Receive(Message)
	// FeedLost is called when messages may have been lost since the last
	// one received (the connection to the backend broke).
	FeedLost()
	// FeedRestored is called once subscriptions are active again after a
	// FeedLost; everything published from now on is received again.
	FeedRestored()
}

// RoomsHandler is a Handler that can also be told of a loss that touched
// some rooms only. A backend in parts (a Redis Cluster, where each shard
// carries some rooms' channels) loses one part at a time: a broker on such
// a backend calls RoomsLost and RoomsRestored with the rooms of the part
// when its handler is a RoomsHandler, so that the rooms of the healthy
// parts are not repaired for nothing. With a plain Handler it calls
// FeedLost when a first part is lost and FeedRestored when every part is
// back. A broker on one connection (one Redis node, the Bus) only ever
// calls FeedLost and FeedRestored.
type RoomsHandler interface {
	Handler
	// RoomsLost is called when messages of these rooms may have been lost
	// since the last one received; the other rooms lost nothing. A room
	// is named again only after its RoomsRestored.
	RoomsLost(rooms []string)
	// RoomsRestored is called once these rooms, named by an earlier
	// RoomsLost, are subscribed again: everything published in them from
	// now on is received. A room whose last subscription ended in between
	// may be left out.
	RoomsRestored(rooms []string)
}

// Broker is an instance's connection to the fan-out backend.
type Broker interface {
	// Publish sends m to every instance subscribed to m.Room, this one
	// included. It fails when the backend is unreachable; the event is
	// committed anyway and reaches subscribers through their gap repair.
	Publish(ctx context.Context, m Message) error
	// Subscribe starts delivery of a room's messages to the handler and
	// returns once the subscription is active: whatever is published after
	// that is received (unless the feed is lost, which FeedLost tells).
	// Subscriptions are counted: every Subscribe needs one Unsubscribe.
	Subscribe(ctx context.Context, room string) error
	// Unsubscribe ends one Subscribe of the room.
	Unsubscribe(room string)
	// Ping checks the backend.
	Ping(ctx context.Context) error
	// Close ends every subscription; calling it twice is safe.
	Close() error
}

// ErrClosed is returned by a broker after Close.
var ErrClosed = errors.New("broker: closed")

// Bus is an in-process backend: brokers connected to one bus see each
// other's messages, like instances sharing one Redis. Delivery is
// synchronous and lossless.
type Bus struct {
	mu      sync.RWMutex
	members map[*Local]struct{}
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{members: map[*Local]struct{}{}} }

// Connect returns a broker on the bus that delivers to h.
func (b *Bus) Connect(h Handler) *Local {
	l := &Local{bus: b, h: h, rooms: map[string]int{}}
	b.mu.Lock()
	b.members[l] = struct{}{}
	b.mu.Unlock()
	return l
}

// NewLocal returns a broker alone on its own bus: the embedded default.
func NewLocal(h Handler) *Local { return NewBus().Connect(h) }

// Local is a broker on a Bus.
type Local struct {
	bus    *Bus
	h      Handler
	mu     sync.RWMutex
	rooms  map[string]int
	closed bool
}

var _ Broker = (*Local)(nil)

// Publish delivers m synchronously to every subscribed broker on the bus.
func (l *Local) Publish(ctx context.Context, m Message) error {
	if l.isClosed() {
		return ErrClosed
	}
	l.bus.mu.RLock()
	defer l.bus.mu.RUnlock()
	for o := range l.bus.members {
		o.mu.RLock()
		on := o.rooms[m.Room] > 0 && !o.closed
		o.mu.RUnlock()
		if on {
			o.h.Receive(m)
		}
	}
	return nil
}

// Subscribe counts one more subscription of room.
func (l *Local) Subscribe(ctx context.Context, room string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.rooms[room]++
	return nil
}

// Unsubscribe counts one subscription of room less.
func (l *Local) Unsubscribe(room string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.rooms[room]; n > 1 {
		l.rooms[room] = n - 1
	} else {
		delete(l.rooms, room)
	}
}

// Ping answers nil until Close.
func (l *Local) Ping(ctx context.Context) error {
	if l.isClosed() {
		return ErrClosed
	}
	return nil
}

// Close leaves the bus.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	l.rooms = map[string]int{}
	l.mu.Unlock()
	l.bus.mu.Lock()
	delete(l.bus.members, l)
	l.bus.mu.Unlock()
	return nil
}

func (l *Local) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}
