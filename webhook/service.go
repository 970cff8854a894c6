package webhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"dealroom"
	"dealroom/internal/netguard"
	"dealroom/room"
)

// Limits of an endpoint's settings.
const (
	MaxURL       = 2000
	MaxEvents    = 50
	MaxTags      = room.MaxTags
	MaxEndpoints = 50
	// MaxReplay bounds the events one replay queues; the answer says
	// where to go on from.
	MaxReplay = 1000
	// MaxLog bounds a delivery log's page.
	MaxLog = 200
)

// EventTypes are the event types an endpoint may ask for.
var EventTypes = []string{room.RoomCreated, room.RoomUpdated, room.MemberAdded, room.MemberUpdated, room.MemberRemoved,
	room.TaskCreated, room.TaskUpdated, room.TaskDeleted, room.MessagePosted, room.MessageEdited, room.MessageDeleted,
	room.AttachmentAdded, room.InviteCreated, room.InviteRevoked, room.InviteAccepted}

// Service is what admins do with endpoints: every method refuses
// (EFORBIDDEN) anyone but an admin who is a person.
type Service struct {
	Store Store
	// Rooms is read for rooms' tags and events.
	Rooms room.Store
	// Guard checks endpoint URLs; the Sender posts through its client.
	Guard *netguard.Guard
	// Resolve looks a host name up (net.DefaultResolver when nil), so that
	// a name of a private address is refused when the endpoint is made,
	// not only at its first delivery.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	Now     func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Input is an endpoint's settings as an admin gives them.
type Input struct {
	URL      string   `json:"url"`
	Events   []string `json:"events"`
	RoomTags []string `json:"room_tags"`
	Internal bool     `json:"internal"`
	Paused   bool     `json:"paused"`
}

// Patch changes some of an endpoint's settings.
type Patch struct {
	URL      dealroom.Opt[string]   `json:"url"`
	Events   dealroom.Opt[[]string] `json:"events"`
	RoomTags dealroom.Opt[[]string] `json:"room_tags"`
	Internal dealroom.Opt[bool]     `json:"internal"`
	Paused   dealroom.Opt[bool]     `json:"paused"`
}

func onlyAdmin(a dealroom.Actor) error {
	if a.Kind != dealroom.Staff || a.Role != dealroom.Admin || a.IsService() {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "only admins manage webhooks")
	}
	return nil
}

// checkURL refuses a URL the guard refuses, or whose host name resolves
// to an address it refuses.
func (s *Service) checkURL(ctx context.Context, raw string) error {
	if utf8.RuneCountInString(raw) > MaxURL {
		return dealroom.Invalid("url", "must be at most %d characters", MaxURL)
	}
	u, err := s.Guard.CheckURL("url", raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // checked by CheckURL
	}
	resolve := s.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := resolve(ctx, host)
	if err != nil || len(addrs) == 0 {
		return dealroom.Invalid("url", "its host name %q does not resolve", host)
	}
	for _, a := range addrs {
		if !s.Guard.Allowed(a) {
			return dealroom.Invalid("url", "its host name resolves to a private, loopback or reserved address")
		}
	}
	return nil
}

func checkEvents(evs []string) error {
	if len(evs) > MaxEvents {
		return dealroom.Invalid("events", "at most %d", MaxEvents)
	}
	for _, e := range evs {
		if !slices.Contains(EventTypes, e) {
			return dealroom.Invalid("events", "%q is not an event type", e)
		}
	}
	return nil
}

func checkTags(tags []string) error {
	if len(tags) > MaxTags {
		return dealroom.Invalid("room_tags", "at most %d", MaxTags)
	}
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > 100 {
			return dealroom.Invalid("room_tags", "a tag must be 1 to 100 characters")
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "wh_" + hex.EncodeToString(b)
}

// Create makes an endpoint and returns it with its secret, shown this
// once. EINVALID for a URL that is not https, names or resolves to a
// refused address, unknown event types, bad tags.
//
// key is the request's Idempotency-Key, or empty. With a key, the
// endpoint's id is derived from the admin and the key, so a retry of a
// create whose answer was lost finds the endpoint made the first time,
// on any instance, and answers it again, secret included (replayed
// true); the same key with other settings is ECONFLICT.
func (s *Service) Create(ctx context.Context, a dealroom.Actor, in Input, key string) (e Endpoint, secret string, replayed bool, err error) {
	if err := onlyAdmin(a); err != nil {
		return Endpoint{}, "", false, err
	}
	id := newID()
	if key != "" {
		id = keyedID(a.ID, key)
		if e, err := s.Store.Endpoint(ctx, id); err == nil {
			return sameCreate(e, in)
		} else if dealroom.ErrorCode(err) != dealroom.ENOTFOUND {
			return Endpoint{}, "", false, err
		}
	}
	e, err = s.create(ctx, a, in, id)
	if key != "" && dealroom.ErrorCode(err) == dealroom.ECONFLICT {
		// Another request with the key made it meanwhile.
		if first, ferr := s.Store.Endpoint(ctx, id); ferr == nil {
			return sameCreate(first, in)
		}
	}
	if err != nil {
		return Endpoint{}, "", false, err
	}
	return e, e.Secret, false, nil
}

// keyedID is the id of the endpoint an admin creates with an
// Idempotency-Key: a hash of both, in the form of newID's.
func keyedID(admin, key string) string {
	h := sha256.Sum256([]byte("webhook-create\x00" + admin + "\x00" + key))
	return "wh_" + hex.EncodeToString(h[:12])
}

// sameCreate answers a create repeated with its key: the endpoint made
// the first time if the settings asked for are the ones it was made
// with, else ECONFLICT.
func sameCreate(e Endpoint, in Input) (Endpoint, string, bool, error) {
	if e.URL != in.URL || !slices.Equal(e.Events, nonNil(in.Events)) || !slices.Equal(e.RoomTags, nonNil(in.RoomTags)) ||
		e.Internal != in.Internal {
		return Endpoint{}, "", false, dealroom.Errorf(dealroom.ECONFLICT,
			"this Idempotency-Key was used for another endpoint (%s); use a new key for a new endpoint", e.ID)
	}
	return e, e.Secret, true, nil
}

func (s *Service) create(ctx context.Context, a dealroom.Actor, in Input, id string) (Endpoint, error) {
	if err := checkEvents(in.Events); err != nil {
		return Endpoint{}, err
	}
	if err := checkTags(in.RoomTags); err != nil {
		return Endpoint{}, err
	}
	if err := s.checkURL(ctx, in.URL); err != nil {
		return Endpoint{}, err
	}
	all, err := s.Store.Endpoints(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	if len(all) >= MaxEndpoints {
		return Endpoint{}, dealroom.Errorf(dealroom.ECONFLICT, "at most %d endpoints", MaxEndpoints)
	}
	now := s.now()
	e := Endpoint{ID: id, URL: in.URL, Events: nonNil(in.Events), RoomTags: nonNil(in.RoomTags), Internal: in.Internal,
		Secret: NewSecret(), Paused: in.Paused, CreatedBy: a.ID, CreatedByEmail: a.Email, CreatedAt: now, UpdatedAt: now}
	if e.Paused {
		e.PausedAt = now
	}
	if err := s.Store.CreateEndpoint(ctx, e); err != nil {
		return Endpoint{}, err
	}
	return e, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// List returns every endpoint.
func (s *Service) List(ctx context.Context, a dealroom.Actor) ([]Endpoint, error) {
	if err := onlyAdmin(a); err != nil {
		return nil, err
	}
	return s.Store.Endpoints(ctx)
}

// Get returns one endpoint. ENOTFOUND when there is none.
func (s *Service) Get(ctx context.Context, a dealroom.Actor, id string) (Endpoint, error) {
	if err := onlyAdmin(a); err != nil {
		return Endpoint{}, err
	}
	return s.Store.Endpoint(ctx, id)
}

// Update changes what p sets. Resuming a paused endpoint clears why it
// was paused and starts its deliveries' day of retries again.
func (s *Service) Update(ctx context.Context, a dealroom.Actor, id string, p Patch) (Endpoint, error) {
	if err := onlyAdmin(a); err != nil {
		return Endpoint{}, err
	}
	for name, null := range map[string]bool{"url": p.URL.Null, "events": p.Events.Null, "room_tags": p.RoomTags.Null,
		"internal": p.Internal.Null, "paused": p.Paused.Null} {
		if null {
			return Endpoint{}, dealroom.Invalid(name, "cannot be null")
		}
	}
	if err := checkEvents(p.Events.V); err != nil {
		return Endpoint{}, err
	}
	if err := checkTags(p.RoomTags.V); err != nil {
		return Endpoint{}, err
	}
	if p.URL.Set {
		if err := s.checkURL(ctx, p.URL.V); err != nil {
			return Endpoint{}, err
		}
	}
	return s.Store.UpdateEndpoint(ctx, id, func(e *Endpoint) error {
		now := s.now()
		if p.URL.Set {
			e.URL = p.URL.V
		}
		if p.Events.Set {
			e.Events = nonNil(p.Events.V)
		}
		if p.RoomTags.Set {
			e.RoomTags = nonNil(p.RoomTags.V)
		}
		if p.Internal.Set {
			e.Internal = p.Internal.V
		}
		if p.Paused.Set && p.Paused.V != e.Paused {
			e.Paused = p.Paused.V
			if e.Paused {
				e.PausedAt, e.PausedReason = now, ""
			} else {
				e.PausedAt, e.PausedReason, e.ResumedAt = time.Time{}, "", now
			}
		}
		e.UpdatedAt = now
		return nil
	})
}

// RotateSecret gives the endpoint a new secret and returns it, shown this
// once. Deliveries from then on are signed with it.
func (s *Service) RotateSecret(ctx context.Context, a dealroom.Actor, id string) (Endpoint, string, error) {
	if err := onlyAdmin(a); err != nil {
		return Endpoint{}, "", err
	}
	secret := NewSecret()
	e, err := s.Store.UpdateEndpoint(ctx, id, func(e *Endpoint) error {
		e.Secret, e.UpdatedAt = secret, s.now()
		return nil
	})
	return e, secret, err
}

// Delete removes the endpoint and its deliveries.
func (s *Service) Delete(ctx context.Context, a dealroom.Actor, id string) error {
	if err := onlyAdmin(a); err != nil {
		return err
	}
	return s.Store.DeleteEndpoint(ctx, id)
}

// Deliveries returns the endpoint's delivery log, latest first.
func (s *Service) Deliveries(ctx context.Context, a dealroom.Actor, id string, limit int) ([]Delivery, error) {
	if err := onlyAdmin(a); err != nil {
		return nil, err
	}
	if _, err := s.Store.Endpoint(ctx, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxLog {
		limit = MaxLog
	}
	return s.Store.Deliveries(ctx, id, limit)
}

// Replayed is what a replay queued.
type Replayed struct {
	// Queued counts the deliveries queued again (or for the first time).
	Queued int `json:"queued"`
	// NextSeq, when not 0, is the seq to replay from next: the replay
	// stopped at MaxReplay events.
	NextSeq int64 `json:"next_seq"`
}

// Replay queues again the room's events from fromSeq on that the endpoint
// wants (as its settings are now, whenever it was made), under their
// webhook-ids; they go out in seq order before the room's later pending
// deliveries. ENOTFOUND for an unknown endpoint or room.
func (s *Service) Replay(ctx context.Context, a dealroom.Actor, id, roomID string, fromSeq int64) (Replayed, error) {
	if err := onlyAdmin(a); err != nil {
		return Replayed{}, err
	}
	if fromSeq < 1 {
		return Replayed{}, dealroom.Invalid("from_seq", "must be 1 or more")
	}
	e, err := s.Store.Endpoint(ctx, id)
	if err != nil {
		return Replayed{}, err
	}
	r, err := s.Rooms.Room(ctx, roomID)
	if err != nil {
		return Replayed{}, err
	}
	if r == nil {
		return Replayed{}, dealroom.NotFound("room", roomID)
	}
	now := s.now()
	e.CreatedAt = time.Time{} // a replay sends what came before the endpoint too
	var out Replayed
	var ds []Delivery
	after, read := fromSeq-1, 0
	for read < MaxReplay {
		evs, err := s.Rooms.Events(ctx, roomID, after, min(200, MaxReplay-read), false)
		if err != nil {
			return Replayed{}, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if e.Wants(ev, r.Tags) {
				ds = append(ds, newDelivery(e.ID, ev, now))
			}
			after = ev.Seq
		}
		read += len(evs)
		if read == MaxReplay && r.Head > after {
			out.NextSeq = after + 1
		}
	}
	if _, err := s.Store.AddDeliveries(ctx, ds); err != nil {
		return Replayed{}, err
	}
	for _, d := range ds {
		if err := s.Store.SaveDelivery(ctx, d); err != nil {
			return Replayed{}, err
		}
	}
	out.Queued = len(ds)
	return out, nil
}

// newDelivery is the pending delivery of ev to the endpoint.
func newDelivery(endpoint string, ev room.Event, now time.Time) Delivery {
	return Delivery{ID: Key(endpoint, ev.ID), Endpoint: endpoint, RoomID: ev.RoomID, Seq: ev.Seq, EventID: ev.ID, Type: ev.Type,
		State: Pending, CreatedAt: now, Due: now, At: now}
}

// hostOf names a URL's host for logs.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}
