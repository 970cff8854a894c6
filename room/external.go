package room

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"dealroom"
	"dealroom/task"
)

// A room may carry the id and the address of its opportunity in the
// company's CRM (external_id, external_url), so that the CRM can open and
// update it by its own id (UpsertRoom). Both are staff-only fields.
//
// An external id names one opportunity for good: it is set on a room that
// has none (at its creation, by a PATCH or by an upsert) and is then
// neither changed nor removed. It is unique among every room of the
// deployment, closed (won or lost) rooms included; rooms are never
// deleted, so an id is never given to a second room. The stores enforce
// the uniqueness where the event is written (ExternalIndex), never the
// service by a read before the write.

// Limits of the external fields.
const (
	MaxExternalID  = 128
	MaxExternalURL = 2000
)

// externalIDRE is what CRMs use as record ids (Salesforce's 18 letters
// and digits, HubSpot's numbers, "opp-123"): letters, digits and ._:-,
// nothing that a URL path would need to escape. Case matters.
var externalIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// CheckExternalID checks an external id.
func CheckExternalID(id string) error {
	if len(id) > MaxExternalID || !externalIDRE.MatchString(id) {
		return dealroom.Invalid("external_id", "external_id must be 1 to %d letters, digits or ._:- characters, starting with a letter or digit", MaxExternalID)
	}
	return nil
}

// checkExternalURL checks the address of the opportunity in the CRM: an
// absolute http or https URL with a host and no credentials.
func checkExternalURL(raw string) error {
	if len(raw) > MaxExternalURL {
		return dealroom.Invalid("external_url", "external_url must have at most %d characters", MaxExternalURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.ContainsAny(raw, " \t\r\n") {
		return dealroom.Invalid("external_url", "external_url must be an http or https address with a host and no user name or password")
	}
	return nil
}

// checkExternal checks the external fields of a new room ("" for none).
func checkExternal(id, link string) (string, string, error) {
	if id != "" {
		if err := CheckExternalID(id); err != nil {
			return "", "", err
		}
	}
	if link != "" {
		if err := checkExternalURL(link); err != nil {
			return "", "", err
		}
	}
	return id, link, nil
}

// patchExternal applies the external fields of p to r, telling note what
// changed: external_id may be set once, external_url changed or cleared.
func (r *Room) patchExternal(p Patch, note func(field string, differs bool)) error {
	if p.ExternalID.Set {
		id := p.ExternalID.V
		if p.ExternalID.Null || id == "" {
			if r.ExternalID != "" {
				return dealroom.Invalid("external_id", "external_id cannot be removed: it names the room's CRM opportunity for good")
			}
		} else {
			if err := CheckExternalID(id); err != nil {
				return err
			}
			if r.ExternalID != "" && r.ExternalID != id {
				return dealroom.Invalid("external_id", "external_id is set already and cannot be changed: it names the room's CRM opportunity for good")
			}
			note("external_id", r.ExternalID != id)
			r.ExternalID = id
		}
	}
	if p.ExternalURL.Set {
		link := p.ExternalURL.V
		if p.ExternalURL.Null {
			link = ""
		}
		if link != "" {
			if err := checkExternalURL(link); err != nil {
				return err
			}
		}
		note("external_url", r.ExternalURL != link)
		r.ExternalURL = link
	}
	return nil
}

// ExternalIDTaken refuses a write that would give a second room an
// external id.
func ExternalIDTaken(id string) error {
	return dealroom.Errorf(dealroom.ECONFLICT, "external_id %q belongs to another room", id)
}

// ExternalOf returns the external id that the event gives its room, ""
// when it gives none (it is not a room.created or a room.updated that
// sets one). Stores call it before they append an event, to claim the id
// for the room or refuse the event with ExternalIDTaken.
func ExternalOf(ev Event) (string, error) {
	if ev.Type != RoomCreated && ev.Type != RoomUpdated {
		return "", nil
	}
	if _, ok := ev.Changes["external_id"]; ev.Type == RoomUpdated && !ok {
		return "", nil
	}
	// Both carry the room's fields at the top of their data.
	var r struct {
		ExternalID string `json:"external_id"`
	}
	err := json.Unmarshal(ev.Data, &r)
	return r.ExternalID, err
}

// ExternalIndex is the stores' index of rooms by external id, kept with
// the events: an event that gives a room an external id claims it in the
// same write (boltstore: in the writer's transaction; mongostore: a
// document whose _id is the external id, inserted before the event), and
// is refused with ExternalIDTaken when another room holds it.
type ExternalIndex interface {
	// RoomOfExternal returns the id of the room holding the external id,
	// "" when none does. A claim whose event failed after it was made
	// (mongostore) still names its room, which may not exist: the id
	// stays reserved to that room id, and an upsert creates it there.
	RoomOfExternal(ctx context.Context, externalID string) (string, error)
}

// Upsert is what a CRM says of an opportunity (PUT
// /rooms/by-external-id/{id}): name and company always, the owner's email
// always (the owner of a new room; on an existing room, a staff member of
// it who becomes its owner), the rest when known. A field left out keeps
// its value; on a new room it gets its default, as in Draft.
type Upsert struct {
	Name        string                `json:"name"`
	Company     string                `json:"company"`
	Value       dealroom.Opt[float64] `json:"value"`
	Currency    string                `json:"currency"`
	Stage       Stage                 `json:"stage"`
	CloseWindow CloseWindow           `json:"close_window"`
	ExternalURL string                `json:"external_url"`
	OwnerEmail  string                `json:"owner_email"`
}

// Check checks what can be checked without a room, so that a bad request
// is refused before anything is looked up.
func (u Upsert) Check(externalID string) error {
	if err := CheckExternalID(externalID); err != nil {
		return err
	}
	d := u.draft(externalID)
	d.Stage = "" // checked against the room's pipeline
	if _, err := newRoom(d, "r_check", dealroom.Actor{}, time.Time{}); err != nil {
		return err
	}
	if u.Stage != "" && !slugRE.MatchString(string(u.Stage)) {
		return dealroom.Invalid("stage", "stage must be a stage name such as \"discovery\", not %q", dealroom.Clip(string(u.Stage)))
	}
	if _, err := dealroom.Line("owner_email", u.OwnerEmail, 3, 254); err != nil || !strings.Contains(u.OwnerEmail, "@") {
		return dealroom.Invalid("owner_email", "owner_email must be the email address of a staff member")
	}
	return nil
}

// draft is the new room u describes.
func (u Upsert) draft(externalID string) Draft {
	d := Draft{Name: u.Name, Company: u.Company, Stage: u.Stage, Currency: u.Currency,
		CloseWindow: u.CloseWindow, ExternalID: externalID, ExternalURL: u.ExternalURL}
	if u.Value.Set && !u.Value.Null {
		v := u.Value.V
		d.Value = &v
	}
	return d
}

// patch is the change u makes to an existing room.
func (u Upsert) patch() Patch {
	p := Patch{Name: dealroom.Some(u.Name), Company: dealroom.Some(u.Company), Value: u.Value}
	if u.Currency != "" {
		p.Currency = dealroom.Some(u.Currency)
	}
	if u.Stage != "" {
		p.Stage = dealroom.Some(u.Stage)
	}
	if u.CloseWindow != "" {
		p.CloseWindow = dealroom.Some(u.CloseWindow)
	}
	if u.ExternalURL != "" {
		p.ExternalURL = dealroom.Some(u.ExternalURL)
	}
	return p
}

// UpsertResult is the room an upsert left, as its staff actor sees it,
// and whether the upsert created it.
type UpsertResult struct {
	Room    *Room
	Created bool
	Written
}

// UpsertRoom creates the room of a CRM opportunity, or updates it, by its
// external id; owner is the staff person owner_email names (the caller
// finds them). Staff only. A room that exists is updated as UpdateRoom
// would (the actor needs the right to change its settings), and an update
// that changes nothing writes no event.
//
// Calls with the same external id at the same time create one room: a
// room id is looked up in the store's index (ExternalIndex) or, when none
// holds the id, derived from it, so that every such call decides on the
// same room, one after the other (the store's writes of a room are
// serialized); the first creates it, the others update it. Errors:
// EINVALID for a bad field, or an owner who is not a staff member of an
// existing room; EFORBIDDEN; ECONFLICT when another room got the id
// meanwhile (a retry lands on that room).
func (s *Service) UpsertRoom(ctx context.Context, a dealroom.Actor, externalID string, u Upsert, owner dealroom.Actor, key string) (UpsertResult, error) {
	if a.IsCustomer() {
		return UpsertResult{}, forbidden("only staff can create rooms")
	}
	if err := u.Check(externalID); err != nil {
		return UpsertResult{}, err
	}
	if owner.ID == "" || owner.IsCustomer() {
		return UpsertResult{}, dealroom.Invalid("owner_email", "owner_email names no staff member this server knows")
	}
	id := derivedID("r", "external id", externalID)
	if ix, ok := s.Store.(ExternalIndex); ok {
		held, err := ix.RoomOfExternal(ctx, externalID)
		if err != nil {
			return UpsertResult{}, err
		}
		if held != "" {
			id = held
		}
	}
	fp, err := fingerprint("room.upsert", id, struct {
		Upsert
		ExternalID string `json:"external_id"`
		Owner      string `json:"owner"`
	}{u, externalID, owner.ID})
	if err != nil {
		return UpsertResult{}, err
	}
	x, err := s.execute(ctx, Command{Room: id, Actor: a.ID, Key: key, Fingerprint: fp, At: s.now(),
		Decide: func(v View) (Decision, error) {
			r, err := v.Room()
			if err != nil {
				return Decision{}, err
			}
			if r == nil {
				return s.createExternal(id, externalID, a, u, owner)
			}
			return s.updateExternal(v, r, externalID, a, u, owner)
		}})
	if err == nil && x.Replayed {
		err = s.checkReplay(ctx, a, id, x.Event)
	}
	if err != nil {
		return UpsertResult{}, err
	}
	res := UpsertResult{Created: x.Event.Type == RoomCreated, Written: Written{Seq: x.Event.Seq, Replayed: x.Replayed}}
	// Read as the store has it, with its head: the actor may not be a
	// member of a room it made for its owner, and sees it as staff.
	res.Room, err = s.Store.Room(ctx, id)
	return res, err
}

// createExternal decides the creation of the room of an external id.
func (s *Service) createExternal(id, externalID string, a dealroom.Actor, u Upsert, owner dealroom.Actor) (Decision, error) {
	now := s.now()
	r, err := newRoom(u.draft(externalID), id, owner, now)
	if err != nil {
		return Decision{}, err
	}
	r.CreatedBy = a.ID
	m := Member{UserID: owner.ID, Name: owner.Name, Kind: dealroom.Staff, Access: Write,
		RoleInRoom: Owner, AddedBy: a.ID, AddedAt: now}
	if m.Name == "" {
		m.Name = owner.Email
	}
	ev, err := newEvent(RoomCreated, id, a, now, dealroom.Shared, RoomCreatedData{Room: r, Members: []Member{m}, Tasks: []task.Task{}})
	return Decision{Event: ev}, err
}

// updateExternal decides the update of the room of an external id.
func (s *Service) updateExternal(v View, r *Room, externalID string, a dealroom.Actor, u Upsert, owner dealroom.Actor) (Decision, error) {
	m, err := v.Member(a.ID)
	if err != nil {
		return Decision{}, err
	}
	if !PermOf(a, m).Settings {
		return Decision{}, forbidden("you cannot change this room's settings")
	}
	if r.ExternalID != "" && r.ExternalID != externalID {
		return Decision{}, ExternalIDTaken(externalID)
	}
	now := s.now()
	p := u.patch()
	p.ExternalID = dealroom.Some(externalID)
	n, changed, err := r.apply(p, now)
	if err != nil {
		return Decision{}, err
	}
	if owner.ID != r.OwnerID {
		om, err := v.Member(owner.ID)
		if err != nil {
			return Decision{}, err
		}
		if om == nil || om.Kind != dealroom.Staff {
			return Decision{}, dealroom.Invalid("owner_email", "the new owner must be a staff member of the room: add them to it first")
		}
		n.OwnerID, n.UpdatedAt = owner.ID, now
		changed = append(changed, "owner_id")
	}
	if len(changed) == 0 {
		return Decision{}, nil
	}
	vis := dealroom.Internal
	if slices.ContainsFunc(changed, func(f string) bool { return slices.Contains(customerFields, f) }) {
		vis = dealroom.Shared
	}
	n.Head, n.LastActivityAt, n.LastCustomerActivityAt = 0, time.Time{}, nil
	ev, err := newEvent(RoomUpdated, r.ID, a, now, vis, n)
	if err == nil {
		ev.Changes, err = diff(r, &n, changed)
	}
	return Decision{Event: ev}, err
}

// RoomByExternalID returns the room holding an external id, as the actor
// may see it; ENOTFOUND when there is none or the actor may not see it.
func (s *Service) RoomByExternalID(ctx context.Context, a dealroom.Actor, externalID string) (*Room, Perm, error) {
	if err := CheckExternalID(externalID); err != nil {
		return nil, Perm{}, err
	}
	id := derivedID("r", "external id", externalID)
	if ix, ok := s.Store.(ExternalIndex); ok {
		held, err := ix.RoomOfExternal(ctx, externalID)
		if err != nil {
			return nil, Perm{}, err
		}
		if held != "" {
			id = held
		}
	}
	r, p, err := s.visibleRoom(ctx, a, id)
	if err == nil && r.ExternalID != externalID {
		return nil, Perm{}, dealroom.NotFound("room", externalID)
	}
	return r, p, err
}
