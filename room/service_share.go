package room

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"dealroom"
	"dealroom/task"
)

// CanWrite tells whether the actor may change the room's content: nil, or
// the error a change would get (ENOTFOUND, EFORBIDDEN). Uploads check it
// before storing any bytes.
func (s *Service) CanWrite(ctx context.Context, a dealroom.Actor, room string) error {
	p, err := s.perm(ctx, a, room)
	if err == nil && !p.Write {
		err = forbidden("you have read access to this room")
	}
	return err
}

// MaxListPage is the most attachments or invites one request lists.
const MaxListPage = 1000

// Attachments lists a page of the files of a room the actor may see,
// oldest first, after the one with id after (""; from the first), and
// returns the id to continue after ("" on the last page). The store reads
// only the page.
func (s *Service) Attachments(ctx context.Context, a dealroom.Actor, room, after string, limit int) ([]Attachment, string, error) {
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return nil, "", err
	}
	limit = clampLimit(limit, 200, MaxListPage)
	items, err := s.Store.Attachments(ctx, room, after, limit+1, !p.Internal)
	if err != nil {
		return nil, "", err
	}
	items = slices.DeleteFunc(items, func(at Attachment) bool { return !p.Sees(at.Visibility) })
	return pageEnd(items, limit, func(at Attachment) string { return at.ID })
}

// pageEnd cuts a read of limit+1 items to limit and says where the next
// page starts.
func pageEnd[T any](items []T, limit int, id func(T) string) ([]T, string, error) {
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	return items, id(items[limit-1]), nil
}

// CheckUpload answers, before any byte is stored, whether AddAttachment
// would accept a file with these fields from the actor (the bytes aside).
// It reads the room's current state, so a concurrent change can still make
// AddAttachment refuse what CheckUpload let through.
func (s *Service) CheckUpload(ctx context.Context, a dealroom.Actor, room string, up Upload) error {
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return err
	}
	_, err = attachmentOf(p, a, room, up, dealroom.Now(), func(id string) (*task.Task, error) {
		return s.Store.Task(ctx, room, id)
	})
	return err
}

// attachmentOf applies the rules of a new attachment: writers only,
// customers upload shared files only, a file under a task is as visible as
// the task at most.
func attachmentOf(p Perm, a dealroom.Actor, room string, up Upload, now time.Time, taskOf func(string) (*task.Task, error)) (Attachment, error) {
	if !p.Write {
		return Attachment{}, forbidden("you have read access to this room")
	}
	at := Attachment{ID: NewID("a", now), RoomID: room, Name: CleanFileName(up.Name), Size: up.Blob.Size,
		ContentType: CleanContentType(up.ContentType), SHA256: up.Blob.SHA256, TaskID: up.TaskID,
		UploadedBy: a.ID, CreatedAt: now}
	var err error
	if at.Visibility, err = dealroom.ParseVisibility("visibility", up.Visibility, dealroom.Shared); err != nil {
		return Attachment{}, err
	}
	if at.Visibility == dealroom.Internal && !p.Internal {
		return Attachment{}, forbidden("customers can only upload shared files")
	}
	if up.TaskID != "" {
		t, err := taskOf(up.TaskID)
		if err != nil {
			return Attachment{}, err
		}
		if t == nil || !p.Sees(t.Visibility) {
			return Attachment{}, dealroom.Invalid("task_id", "task %s does not exist in this room", dealroom.Clip(up.TaskID))
		}
		if t.Visibility == dealroom.Internal && at.Visibility == dealroom.Shared {
			return Attachment{}, dealroom.Invalid("visibility", "a file under an internal task is internal")
		}
	}
	return at, nil
}

// Upload adds a file to the room: it checks the upload against the room's
// rules before any byte is stored (a file the room would refuse never
// reaches Blobs), stores the bytes of body (at most max), and records the
// attachment. Bytes stored for an upload whose record then fails (refused
// by a concurrent change, or the store down) are left to the blob
// collector (CollectBlobs).
func (s *Service) Upload(ctx context.Context, a dealroom.Actor, room string, up Upload, body io.Reader, max int64, key string) (Attachment, error) {
	if err := s.CheckUpload(ctx, a, room, up); err != nil {
		return Attachment{}, err
	}
	blob, err := s.Blobs.Put(ctx, body, max)
	if err != nil {
		return Attachment{}, err
	}
	up.Blob = blob
	return s.AddAttachment(ctx, a, room, up, key)
}

// AddAttachment records a file whose bytes are already in Blobs. Writers
// only; customers upload shared files only.
func (s *Service) AddAttachment(ctx context.Context, a dealroom.Actor, room string, up Upload, key string) (Attachment, error) {
	return run(ctx, s, change[Attachment]{actor: a, room: room, key: key, op: "attachment.add", input: up,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, Attachment, error) {
			at, err := attachmentOf(p, a, room, up, now, v.Task)
			if err != nil {
				return Event{}, Attachment{}, err
			}
			ev, err := newEvent(AttachmentAdded, room, a, now, at.Visibility, at)
			return ev, at, err
		},
		replay: decodeData[Attachment]})
}

// OpenAttachment returns an attachment the actor may see and its bytes; the
// caller closes the reader.
func (s *Service) OpenAttachment(ctx context.Context, a dealroom.Actor, room, id string) (*Attachment, io.ReadSeekCloser, error) {
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return nil, nil, err
	}
	at, err := s.Store.Attachment(ctx, room, id)
	if err != nil {
		return nil, nil, err
	}
	if at == nil || !p.Sees(at.Visibility) {
		return nil, nil, dealroom.NotFound("attachment", id)
	}
	rc, err := s.Blobs.Open(ctx, at.SHA256)
	if err != nil {
		return nil, nil, err
	}
	return at, rc, nil
}

// NewInvite is a created invite with its code, which is shown only once.
type NewInvite struct {
	Invite
	Code string `json:"code"`
	Written
}

// CreateInvite makes an invite link for one customer. Staff with write
// access only.
func (s *Service) CreateInvite(ctx context.Context, a dealroom.Actor, room string, d InviteDraft, key string) (NewInvite, error) {
	code := NewInviteCode()
	return run(ctx, s, change[NewInvite]{actor: a, room: room, key: key, op: "invite.create", input: d,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, NewInvite, error) {
			if !p.Invite {
				return Event{}, NewInvite{}, forbidden("only staff with write access can invite")
			}
			inv := Invite{ID: InviteID(code), RoomID: room, CreatedBy: a.ID, CreatedAt: now}
			var err error
			if inv.Email, err = checkEmail("email", d.Email); err != nil {
				return Event{}, NewInvite{}, err
			}
			if inv.Access, err = checkAccess(d.Access); err != nil {
				return Event{}, NewInvite{}, err
			}
			days := d.ExpiresInDays
			if days == 0 {
				days = DefaultInviteDays
			}
			if days < 1 || days > MaxInviteDays {
				return Event{}, NewInvite{}, dealroom.Invalid("expires_in_days", "expires_in_days must be between 1 and %d", MaxInviteDays)
			}
			inv.ExpiresAt = now.Add(time.Duration(days) * 24 * time.Hour)
			ev, err := newEvent(InviteCreated, room, a, now, dealroom.Internal, inv)
			return ev, NewInvite{Invite: inv, Code: code}, err
		},
		// An idempotent retry: the code was shown with the first answer
		// and is not kept anywhere, so it cannot be shown again.
		replay: func(ev Event) (NewInvite, error) {
			inv, err := decodeData[Invite](ev)
			return NewInvite{Invite: inv}, err
		}})
}

// Invites lists a page of a room's invites for staff with write access,
// newest first, after the one with id after (""; from the newest), and
// returns the id to continue after ("" on the last page).
func (s *Service) Invites(ctx context.Context, a dealroom.Actor, room, after string, limit int) ([]Invite, string, error) {
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return nil, "", err
	}
	if !p.Invite {
		return nil, "", forbidden("only staff with write access see invites")
	}
	var from *Invite
	if after != "" {
		if from, err = s.Store.Invite(ctx, after); err != nil {
			return nil, "", err
		}
		if from == nil || from.RoomID != room {
			return nil, "", dealroom.Invalid("cursor", "the item this cursor points at is gone; list again from the start")
		}
	}
	limit = clampLimit(limit, 200, MaxListPage)
	items, err := s.Store.Invites(ctx, room, from, limit+1)
	if err != nil {
		return nil, "", err
	}
	return pageEnd(items, limit, func(i Invite) string { return i.ID })
}

// RevokeInvite stops an invite from working. Revoking an accepted invite
// ends the tokens its acceptance issued (Authorize refuses them); the
// member it let in stays a member until removed.
func (s *Service) RevokeInvite(ctx context.Context, a dealroom.Actor, room, id, key string) (Written, error) {
	return run(ctx, s, change[Written]{actor: a, room: room, key: key, op: "invite.revoke", input: id,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, Written, error) {
			if !p.Invite {
				return Event{}, Written{}, forbidden("only staff with write access can revoke invites")
			}
			inv, err := v.Invite(id)
			if err != nil {
				return Event{}, Written{}, err
			}
			if inv == nil || inv.RoomID != room {
				return Event{}, Written{}, dealroom.NotFound("invite", id)
			}
			if inv.Status(now) == "revoked" {
				return noChange, Written{}, nil
			}
			n := *inv
			n.RevokedAt = &now
			ev, err := newEvent(InviteRevoked, room, a, now, dealroom.Internal, n)
			return ev, Written{}, err
		}})
}

// Authorize checks that a's sign-in still holds: a token issued on
// accepting an invite ends when that invite is revoked (EUNAUTH). Other
// tokens hold until they expire.
func (s *Service) Authorize(ctx context.Context, a dealroom.Actor) error {
	if a.Invite == "" {
		return nil
	}
	inv, err := s.Store.Invite(ctx, a.Invite)
	if err != nil {
		return err
	}
	if inv == nil || inv.RevokedAt != nil || inv.AcceptedBy != a.ID {
		return dealroom.Errorf(dealroom.EUNAUTH, "this sign-in has ended: the invite it came from was revoked; ask your contact in the room for a new invite")
	}
	return nil
}

// AcceptInvite lets the customer holding an invite code into its room. The
// email must be the one invited. Accepting again as the same person within
// RepeatAcceptWindow of the first acceptance changes nothing and succeeds
// (a double click, a second tab, a lost answer retried); later, and for
// anyone else, the invite is used.
func (s *Service) AcceptInvite(ctx context.Context, code string, acc Acceptance) (*Room, Member, error) {
	if len(code) > 100 || code == "" {
		return nil, Member{}, dealroom.NotFound("invite", dealroom.Clip(code))
	}
	id := InviteID(code)
	inv, err := s.Store.Invite(ctx, id)
	if err != nil {
		return nil, Member{}, err
	}
	if inv == nil {
		return nil, Member{}, dealroom.Errorf(dealroom.ENOTFOUND, "this invite link is not valid")
	}
	name, err := dealroom.Line("name", acc.Name, 1, 100)
	if err != nil {
		return nil, Member{}, err
	}
	email, err := checkEmail("email", acc.Email)
	if err != nil {
		return nil, Member{}, err
	}
	user := CustomerID(email)
	actor := dealroom.Actor{ID: user, Name: name, Email: email, Kind: dealroom.Customer}
	x, err := s.execute(ctx, Command{Room: inv.RoomID, Decide: func(v View) (Decision, error) {
		now := s.now()
		inv, err := v.Invite(id)
		if err != nil || inv == nil {
			if err == nil {
				err = dealroom.Errorf(dealroom.ENOTFOUND, "this invite link is not valid")
			}
			return Decision{}, err
		}
		if !strings.EqualFold(inv.Email, email) {
			return Decision{}, dealroom.Invalid("email", "this invite is for another email address")
		}
		old, err := v.Member(user)
		if err != nil {
			return Decision{}, err
		}
		switch inv.Status(now) {
		case "revoked":
			return Decision{}, conflict("this invite was revoked; ask for a new one")
		case "expired":
			return Decision{}, conflict("this invite expired; ask for a new one")
		case "accepted":
			if inv.AcceptedBy != user || old == nil || now.Sub(*inv.AcceptedAt) > RepeatAcceptWindow {
				return Decision{}, conflict("this invite was used already; ask for a new one")
			}
			if now.After(inv.ExpiresAt) {
				return Decision{}, conflict("this invite expired; ask for a new one")
			}
			return Decision{Event: noChange, Result: *old}, nil
		}
		if old != nil && old.Kind == dealroom.Staff {
			return Decision{}, conflict("this email belongs to a staff member of the room")
		}
		n := *inv
		n.AcceptedAt, n.AcceptedBy = &now, user
		member := Member{UserID: user, Name: name, Kind: dealroom.Customer, Access: inv.Access,
			RoleInRoom: PlainMember, AddedBy: inv.CreatedBy, AddedAt: now}
		if old != nil {
			member.AddedBy, member.AddedAt = old.AddedBy, old.AddedAt
			if old.Access == Write {
				member.Access = Write
			}
		}
		ev, err := newEvent(InviteAccepted, inv.RoomID, actor, now, dealroom.Shared, InviteAcceptedData{Invite: n, Member: member})
		return Decision{Event: ev, Result: member}, err
	}})
	if err != nil {
		return nil, Member{}, err
	}
	member, _ := x.Result.(Member)
	r, err := s.Store.Room(ctx, inv.RoomID)
	return r, member, err
}
