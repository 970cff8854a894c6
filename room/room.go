// Package room is the domain of Dealroom: a room is the digital studio of
// one sales opportunity, with its members, its mutual action plan (package
// task), its discussions, attachments and invites. Every change is a
// command, checked against the room's state (a View) and turned into one
// Event with the room's next seq; the Store keeps the events and the read
// models they imply. Nothing here knows HTTP, MongoDB or Redis.
package room

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"dealroom"
)

// Limits on room fields.
const (
	MaxName     = 200
	MaxTags     = 20
	MaxTag      = 40
	MaxValue    = 1e13
	MaxPipeline = 20
	MaxTasks    = 1000 // per room and visibility: an action plan, not a ticket tracker
	MaxMembers  = 500
)

// Stage is where the opportunity stands on the customer's journey.
type Stage string

// The default pipeline, and the closed states every pipeline has.
const (
	Discovery      Stage = "discovery"
	Solution       Stage = "solution"
	Trust          Stage = "trust"
	Signing        Stage = "signing"
	Implementation Stage = "implementation"
	Relationship   Stage = "relationship"
	Won            Stage = "won"
	Lost           Stage = "lost"
)

// DefaultPipeline is the stage order a room gets when it names none.
var DefaultPipeline = []Stage{Discovery, Solution, Trust, Signing, Implementation, Relationship}

// CloseWindow is the forecast of when the deal can be signed.
type CloseWindow string

// The forecast windows.
const (
	ThisMonth CloseWindow = "this_month"
	NextMonth CloseWindow = "next_month"
	Quarter   CloseWindow = "quarter"
	HalfYear  CloseWindow = "half_year"
	Unknown   CloseWindow = "unknown"
)

// CloseWindows lists the forecast windows, nearest first.
var CloseWindows = []CloseWindow{ThisMonth, NextMonth, Quarter, HalfYear, Unknown}

// Room is the digital studio of one opportunity. Fields marked internal in
// CustomerRoom are never shown to customers.
type Room struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Company     string      `json:"company"`
	Stage       Stage       `json:"stage"`
	Pipeline    []Stage     `json:"pipeline"`
	Value       *float64    `json:"value"`
	Currency    string      `json:"currency"`
	CloseWindow CloseWindow `json:"close_window"`
	Tags        []string    `json:"tags"`
	OwnerID     string      `json:"owner_id"`
	// ExternalID and ExternalURL name the CRM opportunity of the room
	// (external.go); staff only.
	ExternalID  string    `json:"external_id,omitempty"`
	ExternalURL string    `json:"external_url,omitempty"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// FollowUpDays is how many days without a customer's touch pass before
	// the owner is reminded of the room (FollowUp); 0: the default.
	FollowUpDays int `json:"follow_up_days"`
	// Forecast is the close window's history in brief (forecast.go); nil
	// until the window is first set. Customers do not see it.
	Forecast *Forecast `json:"forecast,omitempty"`
	// Head, LastActivityAt and LastCustomerActivityAt are kept by the
	// store from every event; they are left out of event data.
	Head                   int64      `json:"head,omitzero"`
	LastActivityAt         time.Time  `json:"last_activity_at,omitzero"`
	LastCustomerActivityAt *time.Time `json:"last_customer_activity_at,omitempty"`
}

// Clone returns a copy of the room that shares nothing with it (nil for
// nil): a store that keeps rooms hands out clones, so that a decision
// changing its room leaves the kept one alone.
func (r *Room) Clone() *Room {
	if r == nil {
		return nil
	}
	cp := *r
	cp.Pipeline = slices.Clone(r.Pipeline)
	cp.Tags = slices.Clone(r.Tags)
	if r.Value != nil {
		v := *r.Value
		cp.Value = &v
	}
	if r.Forecast != nil {
		f := *r.Forecast
		cp.Forecast = &f
	}
	if r.LastCustomerActivityAt != nil {
		t := *r.LastCustomerActivityAt
		cp.LastCustomerActivityAt = &t
	}
	return &cp
}

// Closed reports whether the deal is won or lost.
func (r *Room) Closed() bool { return r.Stage == Won || r.Stage == Lost }

// CustomerRoom is what a customer sees of a room: no deal value, forecast,
// tags or sales bookkeeping.
type CustomerRoom struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Company   string    `json:"company"`
	Stage     Stage     `json:"stage"`
	Pipeline  []Stage   `json:"pipeline"`
	CreatedAt time.Time `json:"created_at"`
	Head      int64     `json:"head,omitzero"`
}

// ForCustomer returns the customer's view of r.
func (r *Room) ForCustomer() CustomerRoom {
	return CustomerRoom{ID: r.ID, Name: r.Name, Company: r.Company, Stage: r.Stage,
		Pipeline: r.Pipeline, CreatedAt: r.CreatedAt, Head: r.Head}
}

// customerFields are the JSON fields of Room that customers may see; used
// to filter room.updated events.
var customerFields = []string{"id", "name", "company", "stage", "pipeline", "created_at", "head"}

// Draft is the input of a new room.
type Draft struct {
	Name        string      `json:"name"`
	Company     string      `json:"company"`
	Stage       Stage       `json:"stage"`
	Pipeline    []Stage     `json:"pipeline"`
	Value       *float64    `json:"value"`
	Currency    string      `json:"currency"`
	CloseWindow CloseWindow `json:"close_window"`
	Tags        []string    `json:"tags"`
	Template    string      `json:"template"`
	ExternalID  string      `json:"external_id"`
	ExternalURL string      `json:"external_url"`
}

// Patch is a partial update of a room's settings.
type Patch struct {
	Name        dealroom.Opt[string]      `json:"name"`
	Company     dealroom.Opt[string]      `json:"company"`
	Stage       dealroom.Opt[Stage]       `json:"stage"`
	Value       dealroom.Opt[float64]     `json:"value"`
	Currency    dealroom.Opt[string]      `json:"currency"`
	CloseWindow dealroom.Opt[CloseWindow] `json:"close_window"`
	Tags        dealroom.Opt[[]string]    `json:"tags"`
	ExternalID  dealroom.Opt[string]      `json:"external_id"`
	ExternalURL dealroom.Opt[string]      `json:"external_url"`
	// FollowUpDays: 1 to MaxFollowUpDays; null for the default.
	FollowUpDays dealroom.Opt[int] `json:"follow_up_days"`
}

// Follow-up periods, in days.
const (
	DefaultFollowUpDays = 14
	MaxFollowUpDays     = 365
)

// FollowUp returns how long the room may go without a customer's touch
// before its owner is reminded: its own period, or the default.
func (r *Room) FollowUp() time.Duration {
	days := r.FollowUpDays
	if days <= 0 {
		days = DefaultFollowUpDays
	}
	return time.Duration(days) * 24 * time.Hour
}

var (
	slugRE     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

// newRoom checks d and returns the room it describes.
func newRoom(d Draft, id string, owner dealroom.Actor, now time.Time) (Room, error) {
	r := Room{ID: id, OwnerID: owner.ID, CreatedBy: owner.ID, CreatedAt: now, UpdatedAt: now, LastActivityAt: now}
	var err error
	if r.Name, err = dealroom.Line("name", d.Name, 1, MaxName); err != nil {
		return Room{}, err
	}
	if r.Company, err = dealroom.Line("company", d.Company, 1, MaxName); err != nil {
		return Room{}, err
	}
	if r.Pipeline, err = checkPipeline(d.Pipeline); err != nil {
		return Room{}, err
	}
	r.Stage = r.Pipeline[0]
	if d.Stage != "" {
		if r.Stage, err = r.checkStage(d.Stage); err != nil {
			return Room{}, err
		}
	}
	if d.Value != nil {
		if err := checkValue(*d.Value); err != nil {
			return Room{}, err
		}
		v := *d.Value
		r.Value = &v
	}
	if r.Currency, err = checkCurrency(d.Currency); err != nil {
		return Room{}, err
	}
	r.CloseWindow = Unknown
	if d.CloseWindow != "" {
		if r.CloseWindow, err = checkCloseWindow(d.CloseWindow); err != nil {
			return Room{}, err
		}
		r.Forecast = (*Forecast)(nil).Moved(r.CloseWindow, owner.ID, now)
	}
	if r.Tags, err = checkTags(d.Tags); err != nil {
		return Room{}, err
	}
	if r.ExternalID, r.ExternalURL, err = checkExternal(d.ExternalID, d.ExternalURL); err != nil {
		return Room{}, err
	}
	return r, nil
}

// apply returns r changed by p and the JSON names of the fields that
// changed. It changes nothing on error.
func (r Room) apply(p Patch, now time.Time) (Room, []string, error) {
	n := r
	var changed []string
	var err error
	note := func(field string, differs bool) {
		if differs {
			changed = append(changed, field)
		}
	}
	if p.Name.Set {
		if n.Name, err = dealroom.Line("name", p.Name.V, 1, MaxName); err != nil {
			return r, nil, err
		}
		note("name", n.Name != r.Name)
	}
	if p.Company.Set {
		if n.Company, err = dealroom.Line("company", p.Company.V, 1, MaxName); err != nil {
			return r, nil, err
		}
		note("company", n.Company != r.Company)
	}
	if p.Stage.Set {
		if n.Stage, err = r.checkStage(p.Stage.V); err != nil {
			return r, nil, err
		}
		note("stage", n.Stage != r.Stage)
	}
	if p.Value.Set {
		n.Value = nil
		if !p.Value.Null {
			if err := checkValue(p.Value.V); err != nil {
				return r, nil, err
			}
			v := p.Value.V
			n.Value = &v
		}
		note("value", (n.Value == nil) != (r.Value == nil) || (n.Value != nil && *n.Value != *r.Value))
	}
	if p.Currency.Set {
		if n.Currency, err = checkCurrency(p.Currency.V); err != nil {
			return r, nil, err
		}
		note("currency", n.Currency != r.Currency)
	}
	if p.CloseWindow.Set {
		if n.CloseWindow, err = checkCloseWindow(p.CloseWindow.V); err != nil {
			return r, nil, err
		}
		note("close_window", n.CloseWindow != r.CloseWindow)
	}
	if p.Tags.Set {
		if n.Tags, err = checkTags(p.Tags.V); err != nil {
			return r, nil, err
		}
		note("tags", !slices.Equal(n.Tags, r.Tags))
	}
	if err := n.patchExternal(p, note); err != nil {
		return r, nil, err
	}
	if p.FollowUpDays.Set {
		n.FollowUpDays = 0
		if !p.FollowUpDays.Null {
			if p.FollowUpDays.V < 1 || p.FollowUpDays.V > MaxFollowUpDays {
				return r, nil, dealroom.Invalid("follow_up_days", "follow_up_days must be a number of days from 1 to %d, or null for the default (%d)", MaxFollowUpDays, DefaultFollowUpDays)
			}
			n.FollowUpDays = p.FollowUpDays.V
		}
		note("follow_up_days", n.FollowUpDays != r.FollowUpDays)
	}
	if len(changed) > 0 {
		n.UpdatedAt = now
	}
	return n, changed, nil
}

func (r *Room) checkStage(s Stage) (Stage, error) {
	if s == Won || s == Lost || slices.Contains(r.Pipeline, s) {
		return s, nil
	}
	names := make([]string, 0, len(r.Pipeline)+2)
	for _, p := range r.Pipeline {
		names = append(names, string(p))
	}
	names = append(names, string(Won), string(Lost))
	return "", dealroom.Invalid("stage", "stage must be one of %s, not %q", strings.Join(names, ", "), dealroom.Clip(string(s)))
}

func checkPipeline(p []Stage) ([]Stage, error) {
	if len(p) == 0 {
		return slices.Clone(DefaultPipeline), nil
	}
	if len(p) > MaxPipeline {
		return nil, dealroom.Invalid("pipeline", "a pipeline has at most %d stages", MaxPipeline)
	}
	for i, s := range p {
		if !slugRE.MatchString(string(s)) || s == Won || s == Lost {
			return nil, dealroom.Invalid("pipeline", "pipeline stages are lower-case names like \"discovery\" (won and lost are implied), not %q", dealroom.Clip(string(s)))
		}
		if slices.Contains(p[:i], s) {
			return nil, dealroom.Invalid("pipeline", "stage %q appears twice in the pipeline", s)
		}
	}
	return slices.Clone(p), nil
}

func checkValue(v float64) error {
	if v < 0 || v > MaxValue {
		return dealroom.Invalid("value", "value must be between 0 and %.0f", float64(MaxValue))
	}
	return nil
}

func checkCurrency(c string) (string, error) {
	if c == "" || currencyRE.MatchString(c) {
		return c, nil
	}
	return "", dealroom.Invalid("currency", "currency must be a three-letter ISO 4217 code such as EUR, not %q", dealroom.Clip(c))
}

func checkCloseWindow(w CloseWindow) (CloseWindow, error) {
	if slices.Contains(CloseWindows, w) {
		return w, nil
	}
	return "", dealroom.Invalid("close_window", "close_window must be one of this_month, next_month, quarter, half_year, unknown, not %q", dealroom.Clip(string(w)))
}

func checkTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t, err := dealroom.Line("tags", t, 1, MaxTag)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, dealroom.Invalid("tags", "a room has at most %d tags", MaxTags)
	}
	return out, nil
}
