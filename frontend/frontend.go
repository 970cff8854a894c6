// Package frontend serves the web app that is built into the binary: the
// files under web/ are embedded at compile time, so the server shows its
// page with nothing else installed.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed web
var files embed.FS

// Register serves the web app on e: real files by path, and index.html for
// the app's own routes (/room/..., /invite/...), so that a link into the
// app opens it.
func Register(e *echo.Echo) {
	web, err := fs.Sub(files, "web")
	if err != nil {
		panic("frontend: " + err.Error())
	}
	static := http.FileServer(http.FS(web))
	index, err := fs.ReadFile(web, "index.html")
	if err != nil {
		panic("frontend: " + err.Error())
	}
	e.GET("/*", func(c echo.Context) error {
		p := strings.TrimPrefix(path.Clean(c.Request().URL.Path), "/")
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		if p != "" && p != "index.html" {
			if st, err := fs.Stat(web, p); err == nil && !st.IsDir() {
				static.ServeHTTP(c.Response(), c.Request())
				return nil
			}
			if strings.Contains(path.Base(p), ".") {
				return echo.ErrNotFound // a missing asset, not an app route
			}
		}
		h.Set("Cache-Control", "no-cache")
		return c.HTMLBlob(http.StatusOK, index)
	})
}
