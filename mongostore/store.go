package mongostore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readconcern"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.mongodb.org/mongo-driver/mongo/writeconcern"

	"dealroom"
	"dealroom/room"
)

// DefaultDatabase is the database used when the URI names none.
const DefaultDatabase = "dealroom"

// Collection names.
const (
	colEvents      = "events"
	colRooms       = "rooms"
	colMembers     = "members"
	colTasks       = "tasks"
	colMessages    = "messages"
	colAttachments = "attachments"
	colInvites     = "invites"
	colInbox       = "inbox"
)

var _ room.Store = (*Store)(nil)

// Store is the MongoDB room.Store. It is safe for concurrent use, and any
// number of Stores (in any number of processes) may share one database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	cfg    config
	log    *slog.Logger

	events, rooms, members, tasks, messages, attachments, invites, inbox *mongo.Collection
	// committedEvents reads the events with read concern "majority": only
	// those that a failover cannot roll back (see Events and settle).
	committedEvents *mongo.Collection

	locks roomLocks
	fresh freshCache
	hot   hotRooms
	// briefs keeps the briefs the pipeline decoded (brief.go).
	briefs room.BriefCache

	clashes   atomic.Int64 // seqs found taken by another writer
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// afterInsert, when set (by tests), runs right after an event is
	// inserted and before the read models are updated; an error it
	// returns ends Execute there, as a crash would.
	afterInsert func(room.Event) error
}

type config struct {
	database               string
	maxAttempts            int
	freshFor               time.Duration
	repairOnOpen           bool
	serverSelectionTimeout time.Duration
	applyTimeout           time.Duration
	blobBucket             string
	log                    *slog.Logger
	monitor                *event.CommandMonitor // tests count round trips
}

// Option configures Open.
type Option func(*config)

// WithDatabase uses the named database instead of the one in the URI.
func WithDatabase(name string) Option { return func(c *config) { c.database = name } }

// WithMaxAttempts bounds how often Execute decides again after another
// writer took the seq it wanted (default 100). When they are used up,
// Execute fails with EUNAVAILABLE.
func WithMaxAttempts(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxAttempts = n
		}
	}
}

// WithRepairCheckInterval sets how long a room that was found up to date
// is trusted by reads before they check again whether its read models lag
// behind its events (default 1s; 0 checks on every read). Writes always
// check. The check only matters after a writer died between appending an
// event and updating the read models.
func WithRepairCheckInterval(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.freshFor = d
		}
	}
}

// WithRepairOnOpen says whether Open brings every room's read models up to
// its events before it returns (default true). Without it, rooms are
// repaired lazily when they are next used; see the package documentation.
func WithRepairOnOpen(on bool) Option { return func(c *config) { c.repairOnOpen = on } }

// WithServerSelectionTimeout sets how long an operation waits for a usable
// server before it fails with EUNAVAILABLE (default 10s; a
// serverSelectionTimeoutMS in the URI wins).
func WithServerSelectionTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.serverSelectionTimeout = d
		}
	}
}

// WithBlobBucket names the GridFS bucket of Blobs (default "blobs").
func WithBlobBucket(name string) Option {
	return func(c *config) {
		if name != "" {
			c.blobBucket = name
		}
	}
}

// WithLogger logs repairs and failures after a commit (default: nothing).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Open connects to the MongoDB at uri, creates the collections' indexes
// (idempotently) and, unless WithRepairOnOpen(false), repairs read models
// that lag behind their events. The database is the one named in the URI's
// path, DefaultDatabase when there is none, or the one of WithDatabase.
// A server that cannot be reached is an EUNAVAILABLE error.
func Open(ctx context.Context, uri string, opts ...Option) (*Store, error) {
	cfg := config{
		maxAttempts:            100,
		freshFor:               time.Second,
		repairOnOpen:           true,
		serverSelectionTimeout: 10 * time.Second,
		applyTimeout:           30 * time.Second,
		blobBucket:             "blobs",
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.database == "" {
		name, err := DatabaseFromURI(uri)
		if err != nil {
			return nil, err
		}
		cfg.database = name
	}
	log := cfg.log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	copts, err := clientOptions(uri, cfg, log)
	if err != nil {
		return nil, err
	}
	client, err := mongo.Connect(ctx, copts)
	if err != nil {
		return nil, fmt.Errorf("mongostore: %w", err)
	}
	// Decisions must read what was last written, whatever the URI says:
	// the primary's latest (read concern "local"). Events served to
	// devices are read with "majority" instead (committedEvents).
	db := client.Database(cfg.database, options.Database().
		SetReadPreference(readpref.Primary()).SetReadConcern(readconcern.Local()))
	s := &Store{client: client, db: db, cfg: cfg, log: log,
		events: db.Collection(colEvents), rooms: db.Collection(colRooms), members: db.Collection(colMembers),
		tasks: db.Collection(colTasks), messages: db.Collection(colMessages),
		attachments: db.Collection(colAttachments), invites: db.Collection(colInvites), inbox: db.Collection(colInbox),
		committedEvents: db.Collection(colEvents, options.Collection().SetReadConcern(readconcern.Majority()))}
	s.locks.m = map[string]*roomLock{}
	s.fresh.m = map[string]time.Time{}
	fail := func(err error) (*Store, error) {
		client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return fail(dealroom.Unavailable(fmt.Errorf("mongostore: %w", err)))
	}
	if err := s.ensureIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureSessionIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureReadIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureEngagementIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureTicketIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureOutboxIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureStaffIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensurePushIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureWebhookIndexes(ctx); err != nil {
		return fail(err)
	}
	if cfg.repairOnOpen {
		if err := s.Repair(ctx); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// clientOptions makes the client's options from the URI and what the
// store's promises rest on (see docs/architecture.md, "MongoDB replica
// set"):
//
//   - Writes are acknowledged by a majority: w:"majority" unless the URI
//     names a number of nodes of at least 2 or a tag set. A URI with w=0
//     or w=1 is refused: on a replica set an event the primary alone has
//     acknowledged is rolled back by a failover after devices, webhooks
//     and mail were told of it, and the next event takes its seq; on a
//     standalone server w:"majority" costs what w:1 does, so the refusal
//     costs no one a working setup.
//   - Writes are retried once by the driver after a step-down or a
//     network error (retryable writes, on by default). retryWrites=false
//     is let through with a warning: Execute settles lost answers on its
//     own and the other writes are idempotent, so it costs more
//     EUNAVAILABLE answers during a failover, not correctness.
//   - Reads go to the primary; another readPreference in the URI is
//     overridden, with a warning.
func clientOptions(uri string, cfg config, log *slog.Logger) (*options.ClientOptions, error) {
	copts := options.Client().SetServerSelectionTimeout(cfg.serverSelectionTimeout).ApplyURI(uri).SetRegistry(registry)
	if err := copts.Validate(); err != nil {
		return nil, fmt.Errorf("mongostore: %w", err)
	}
	if cfg.monitor != nil {
		copts.SetMonitor(cfg.monitor)
	}
	wc := writeconcern.Majority()
	if given := copts.WriteConcern; given != nil {
		wc = &writeconcern.WriteConcern{W: given.W, Journal: given.Journal, WTimeout: given.WTimeout}
		switch w := given.W.(type) {
		case nil:
			wc.W = "majority"
		case int:
			if w < 2 {
				return nil, fmt.Errorf("mongostore: the MongoDB URI asks for w=%d: an acknowledged event "+
					"could then be lost in a failover; give w=majority or leave w out", w)
			}
		}
	}
	copts.SetWriteConcern(wc)
	if copts.RetryWrites != nil && !*copts.RetryWrites {
		log.Warn("mongostore: retryWrites=false in the MongoDB URI: writes are not retried by the driver after a primary steps down, so more of them fail during a failover")
	}
	if rp := copts.ReadPreference; rp != nil && rp.Mode() != readpref.PrimaryMode {
		log.Warn("mongostore: the MongoDB URI's readPreference is overridden: the store reads from the primary", "given", rp.Mode().String())
	}
	copts.SetReadPreference(readpref.Primary())
	return copts, nil
}

// DatabaseFromURI returns the database named in a MongoDB connection
// string's path, DefaultDatabase when it names none.
func DatabaseFromURI(uri string) (string, error) {
	_, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "", fmt.Errorf("mongostore: %q is not a mongodb:// URI", uri)
	}
	// User names and passwords must have '/' escaped, so the first '/'
	// ends the host list.
	_, path, ok := strings.Cut(rest, "/")
	if !ok {
		return DefaultDatabase, nil
	}
	path, _, _ = strings.Cut(path, "?")
	name, err := url.PathUnescape(path)
	if err != nil {
		return "", fmt.Errorf("mongostore: bad database name in URI: %w", err)
	}
	if name == "" {
		return DefaultDatabase, nil
	}
	return name, nil
}

// index is one index of a collection.
type index struct {
	coll   string
	keys   bson.D
	unique bool
}

// indexes lists every index the store needs. room_id leads each of them,
// so that the room-scoped collections can be sharded by room_id, except
// where a lookup is global by nature (marked).
var indexes = []index{
	// The room's log: one seq per room, read in seq order.
	{colEvents, bson.D{{Key: "room_id", Value: 1}, {Key: "seq", Value: 1}}, true},
	// Idempotency keys, recorded in the event document itself.
	{colEvents, bson.D{{Key: "room_id", Value: 1}, {Key: "idem", Value: 1}}, true},
	// Exception: every room, newest first (managers see all rooms). The
	// rooms collection is keyed by the room id (_id).
	{colRooms, bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}, false},
	{colMembers, bson.D{{Key: "room_id", Value: 1}, {Key: "user_id", Value: 1}}, true},
	// Exception: the rooms a user is a member of.
	{colMembers, bson.D{{Key: "user_id", Value: 1}, {Key: "room_id", Value: 1}}, false},
	{colTasks, bson.D{{Key: "room_id", Value: 1}, {Key: "id", Value: 1}}, true},
	// Exception: the tasks assigned to a user across rooms.
	{colTasks, bson.D{{Key: "assignees", Value: 1}, {Key: "room_id", Value: 1}, {Key: "id", Value: 1}}, false},
	{colMessages, bson.D{{Key: "room_id", Value: 1}, {Key: "id", Value: 1}}, true},
	{colMessages, bson.D{{Key: "room_id", Value: 1}, {Key: "parent_id", Value: 1}, {Key: "id", Value: 1}}, false},
	// What a customer's listing of thread roots and a task's discussion
	// read: the page, not every internal message of the room.
	{colMessages, bson.D{{Key: "room_id", Value: 1}, {Key: "parent_id", Value: 1}, {Key: "visibility", Value: 1}, {Key: "id", Value: 1}}, false},
	{colMessages, bson.D{{Key: "room_id", Value: 1}, {Key: "task_id", Value: 1}, {Key: "parent_id", Value: 1}, {Key: "visibility", Value: 1}, {Key: "id", Value: 1}}, false},
	// The deleted messages of a room (few), for redacting the timeline.
	{colMessages, bson.D{{Key: "room_id", Value: 1}, {Key: "deleted", Value: 1}}, false},
	{colAttachments, bson.D{{Key: "room_id", Value: 1}, {Key: "id", Value: 1}}, true},
	{colAttachments, bson.D{{Key: "room_id", Value: 1}, {Key: "visibility", Value: 1}, {Key: "id", Value: 1}}, false},
	// Invites are keyed by their id (_id), a hash of the code: accepting
	// one looks it up without knowing the room (exception).
	{colInvites, bson.D{{Key: "room_id", Value: 1}, {Key: "created_at", Value: -1}}, false},
	// Exception: an inbox belongs to a user, across rooms.
	{colInbox, bson.D{{Key: "user_id", Value: 1}, {Key: "id", Value: 1}}, true},
}

func (s *Store) ensureIndexes(ctx context.Context) error {
	byColl := map[string][]mongo.IndexModel{}
	var order []string
	for _, ix := range indexes {
		if _, ok := byColl[ix.coll]; !ok {
			order = append(order, ix.coll)
		}
		o := options.Index()
		if ix.unique {
			o.SetUnique(true)
		}
		byColl[ix.coll] = append(byColl[ix.coll], mongo.IndexModel{Keys: ix.keys, Options: o})
	}
	for _, c := range order {
		if _, err := s.db.Collection(c).Indexes().CreateMany(ctx, byColl[c]); err != nil {
			return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", c, err))
		}
	}
	return nil
}

// Ping implements room.Store: it checks that the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return s.fail(ctx, s.client.Ping(ctx, readpref.Primary()))
}

// Close disconnects from MongoDB. Calling it twice is safe; after it,
// every method fails with EUNAVAILABLE.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closeErr = s.client.Disconnect(ctx)
	})
	return s.closeErr
}

// Client returns the store's MongoDB client, e.g. for health checks of
// other components that share it.
func (s *Store) Client() *mongo.Client { return s.client }

// Database returns the store's database.
func (s *Store) Database() *mongo.Database { return s.db }

var errClosed = dealroom.Unavailable(errors.New("mongostore: store closed"))

// fail turns a backend failure into EUNAVAILABLE; domain errors pass.
func (s *Store) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var de *dealroom.Error
	if errors.As(err, &de) {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	return dealroom.Unavailable(err)
}

// begin refuses work on a closed store.
func (s *Store) begin() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}
