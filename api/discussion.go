package api

import (
	"bufio"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/room"
)

func (s *Server) listMessages(c echo.Context) error {
	f := room.MessageFilter{Room: c.Param("room"), ParentID: c.QueryParam("parent_id"), TaskID: c.QueryParam("task_id")}
	var err error
	if f.After, f.Limit, err = pageParams(c, 100, 500); err != nil {
		return err
	}
	msgs, err := s.svc.Messages(c.Request().Context(), actor(c), f)
	if err != nil {
		return err
	}
	out := list[room.Message]{Items: msgs}
	if msgs == nil {
		out.Items = []room.Message{}
	}
	if len(msgs) == f.Limit {
		out.NextCursor = encodeCursor(msgs[len(msgs)-1].ID)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getMessage(c echo.Context) error {
	m, err := s.svc.Message(c.Request().Context(), actor(c), c.Param("room"), c.Param("msg"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

func (s *Server) listAttachments(c echo.Context) error {
	after, limit, err := pageParams(c, 200, room.MaxListPage)
	if err != nil {
		return err
	}
	as, next, err := s.svc.Attachments(c.Request().Context(), actor(c), c.Param("room"), after, limit)
	if err != nil {
		return err
	}
	if as == nil {
		as = []room.Attachment{}
	}
	return c.JSON(http.StatusOK, list[room.Attachment]{Items: as, NextCursor: encodeCursor(next)})
}

// upload reads a multipart upload (field "file", optional fields
// "visibility" and "task_id", also accepted as query parameters) into a
// spool file, and hands it to the service (room.Service.Upload: check,
// store the bytes, record). Permission is checked before the body is
// read, so that nobody can fill the disk of a room they cannot write to.
func (s *Server) upload(c echo.Context) error {
	ctx := c.Request().Context()
	a, roomID := actor(c), c.Param("room")
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	if err := s.svc.CanWrite(ctx, a, roomID); err != nil {
		return err
	}
	r := c.Request()
	if r.ContentLength > s.cfg.MaxUploadBytes+64<<10 {
		return dealroom.Errorf(dealroom.ETOOLARGE, "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
	}
	r.Body = http.MaxBytesReader(c.Response(), s.transfer(c).body(r.Body), s.cfg.MaxUploadBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		return dealroom.Errorf(dealroom.EBADREQUEST, "send the file as multipart/form-data in a field named \"file\"")
	}
	// visibility and task_id may come in the query or as form fields (a
	// form field wins), each once; a value in the query is checked even
	// when a form field replaces it.
	var up room.Upload
	vis, present, err := queryValue(c, "visibility")
	if err != nil {
		return err
	}
	if v := dealroom.Visibility(vis); present && v != dealroom.Shared && v != dealroom.Internal {
		return dealroom.Invalid("visibility", "visibility must be %q or %q, not %q", dealroom.Shared, dealroom.Internal, dealroom.Clip(vis))
	}
	up.Visibility = dealroom.Visibility(vis)
	if up.TaskID, _, err = queryValue(c, "task_id"); err != nil {
		return err
	}
	given := map[string]bool{} // form fields seen
	var got bool
	var spool *spooled
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return uploadError(err)
		}
		switch part.FormName() {
		case "file":
			if got {
				return dealroom.Errorf(dealroom.EBADREQUEST, "send one file per upload")
			}
			got = true
			up.Name = part.FileName()
			br := bufio.NewReaderSize(part, 512)
			up.ContentType = contentType(part.Header.Get("Content-Type"), br)
			if spool, err = spoolUpload(s.cfg.SpoolDir, br, s.cfg.MaxUploadBytes); err != nil {
				return uploadError(err)
			}
			defer spool.Close()
		case "visibility", "task_id":
			if given[part.FormName()] {
				return dealroom.Invalid(part.FormName(), "the form gives %s twice", part.FormName())
			}
			given[part.FormName()] = true
			v, err := io.ReadAll(io.LimitReader(part, 200))
			if err != nil {
				return uploadError(err)
			}
			if part.FormName() == "visibility" {
				vis := strings.TrimSpace(string(v))
				if up.Visibility = dealroom.Visibility(vis); up.Visibility != dealroom.Shared && up.Visibility != dealroom.Internal {
					return dealroom.Invalid("visibility", "visibility must be %q or %q, not %q", dealroom.Shared, dealroom.Internal, dealroom.Clip(vis))
				}
			} else {
				up.TaskID = strings.TrimSpace(string(v))
			}
		default:
			return dealroom.Invalid(part.FormName(), "unknown form field %q", dealroom.Clip(part.FormName()))
		}
		part.Close()
	}
	if !got {
		return dealroom.Invalid("file", "the upload has no field named \"file\"")
	}
	at, err := s.svc.Upload(ctx, a, roomID, up, spool, s.cfg.MaxUploadBytes, key)
	if err != nil {
		return uploadError(err)
	}
	return c.JSON(http.StatusCreated, at)
}

// spooled is an upload's bytes held in a temporary file until the upload
// is known to be acceptable; Close removes the file.
type spooled struct{ *os.File }

func (f *spooled) Close() error {
	f.File.Close()
	return os.Remove(f.Name())
}

// spoolUpload copies r into a temporary file in dir, failing with
// ETOOLARGE past max bytes, and leaves the file open at its start.
func spoolUpload(dir string, r io.Reader, max int64) (*spooled, error) {
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return nil, dealroom.Unavailable(err)
	}
	sp := &spooled{f}
	n, err := io.Copy(f, io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = dealroom.Errorf(dealroom.ETOOLARGE, "the file is larger than the limit of %d bytes", max)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		sp.Close()
		return nil, err
	}
	return sp, nil
}

func uploadError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case dealroom.ErrorCode(err) != dealroom.EINTERNAL:
		return err
	case errors.As(err, &mbe):
		return dealroom.Errorf(dealroom.ETOOLARGE, "the upload is larger than the limit")
	}
	return dealroom.Errorf(dealroom.EBADREQUEST, "the upload could not be read as multipart/form-data")
}

// contentType trusts a declared media type unless it is missing or
// generic, and then sniffs the first bytes.
func contentType(declared string, br *bufio.Reader) string {
	if mt, _, err := mime.ParseMediaType(declared); err == nil && mt != "application/octet-stream" {
		return declared
	}
	head, _ := br.Peek(512)
	return http.DetectContentType(head)
}

// download serves an attachment so that it can never run in our origin: as
// a download, with the declared type not sniffed, in a sandbox.
func (s *Server) download(c echo.Context) error {
	view, present, err := queryValue(c, "view")
	if err != nil {
		return err
	}
	if present && view != "true" && view != "false" {
		return dealroom.Invalid("view", "view must be true or false")
	}
	at, rc, err := s.svc.OpenAttachment(c.Request().Context(), actor(c), c.Param("room"), c.Param("id"))
	if err != nil {
		return err
	}
	defer rc.Close()
	s.engage.file(c, c.Param("room"), at.ID, view == "true")
	h := c.Response().Header()
	h.Set("Content-Type", at.ContentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": at.Name}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "private, no-cache")
	h.Set("ETag", `"`+at.SHA256+`"`)
	http.ServeContent(s.transfer(c).answer(c.Response()), c.Request(), "", at.CreatedAt, rc)
	return nil
}

func (s *Server) listInvites(c echo.Context) error {
	after, limit, err := pageParams(c, 200, room.MaxListPage)
	if err != nil {
		return err
	}
	invs, next, err := s.svc.Invites(c.Request().Context(), actor(c), c.Param("room"), after, limit)
	if err != nil {
		return err
	}
	now := time.Now()
	type shown struct {
		room.Invite
		Status string `json:"status"`
	}
	out := make([]shown, len(invs))
	for i, inv := range invs {
		out[i] = shown{inv, inv.Status(now)}
	}
	return c.JSON(http.StatusOK, list[shown]{Items: out, NextCursor: encodeCursor(next)})
}

// acceptInvite needs no token: the code is the credential. It answers with
// a customer token for the invited person.
func (s *Server) acceptInvite(c echo.Context) error {
	var acc room.Acceptance
	if err := s.bind(c, &acc); err != nil {
		return err
	}
	r, m, err := s.svc.AcceptInvite(c.Request().Context(), c.Param("code"), acc)
	if err != nil {
		return err
	}
	email := strings.TrimSpace(acc.Email)
	token, err := s.keys.Issue(dealroom.Actor{ID: m.UserID, Name: m.Name, Email: email, Kind: dealroom.Customer,
		Invite: room.InviteID(c.Param("code"))}, s.cfg.CustomerTokenTTL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"token": token, "room": r.ForCustomer(), "member": m,
		"expires_at": time.Now().Add(s.cfg.CustomerTokenTTL).UTC().Truncate(time.Second)})
}

// publicURL is the configured public address, or the one this request
// came to.
func (s *Server) publicURL(c echo.Context) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	return c.Scheme() + "://" + c.Request().Host
}

func (s *Server) inbox(c echo.Context) error {
	before, limit, err := pageParams(c, 50, 200)
	if err != nil {
		return err
	}
	items, next, err := s.svc.Inbox(c.Request().Context(), actor(c), before, limit)
	if err != nil {
		return err
	}
	out := list[room.InboxItem]{Items: items, NextCursor: encodeCursor(next)}
	if items == nil {
		out.Items = []room.InboxItem{}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) markRead(c echo.Context) error {
	if err := s.svc.MarkRead(c.Request().Context(), actor(c), c.Param("item")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
