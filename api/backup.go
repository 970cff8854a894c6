package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
)

// backup streams the embedded store and the attachments as one tar
// (package backup), for an admin or an API key with backup:read. The
// store is copied before the answer begins, so that a failure there is a
// plain error answer; a failure once the stream has begun cuts the
// connection, so that a cut backup is never taken for a whole one. Only
// the time between writes is bounded (IdleTimeout), not the whole: a big
// data directory takes long over a slow link.
func (s *Server) backup(c echo.Context) error {
	a := actor(c)
	if !a.IsService() { // an API key's scope was checked with the route
		if err := onlyAdmin(a, "take backups"); err != nil {
			return err
		}
	}
	src := s.cfg.Backup
	if src == nil {
		return dealroom.Errorf(dealroom.ENOTFOUND, "this server keeps its data in MongoDB: back it up with MongoDB's own tools (mongodump, or snapshots of the replica set's disks)")
	}
	ctx := c.Request().Context()
	b, err := src.Prepare(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	s.log.Info("backup started", "by", a.ID, "at", b.At)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/x-tar")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", "dealroom-backup-"+b.At.Format("20060102T150405Z")+".tar"))
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	t := s.transfer(c)
	t.end = time.Time{} // no bound in all: only between writes
	start := time.Now()
	if err := b.WriteTo(ctx, t.answer(c.Response())); err != nil {
		s.log.Warn("a backup stopped", "by", a.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup sent", "by", a.ID, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
