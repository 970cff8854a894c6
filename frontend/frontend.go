// Package frontend serves the web app that is built into the binary: the
// files under web/ are embedded at compile time, so the server shows its
// page with nothing else installed. The app is plain ES modules, CSS and
// HTML written for this project: there is no build step and no third-party
// code among the assets.
package frontend

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed web
var files embed.FS

// csp allows only the app's own scripts, styles and connections (the API
// and the websocket on the same host); no inline script or style.
const csp = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Register serves the web app on e: real files by path, and index.html for
// the app's own routes (/room/..., /invite/..., /me/tasks, ...), so that a
// link into the app opens it. Assets carry an ETag made from their content,
// so browsers revalidate them cheaply and never run a stale version.
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
	etags := map[string]string{}
	err = fs.WalkDir(web, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags[p] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	if err != nil {
		panic("frontend: " + err.Error())
	}
	e.GET("/*", func(c echo.Context) error {
		p := strings.TrimPrefix(path.Clean(c.Request().URL.Path), "/")
		h := c.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-cache")
		if p != "" && p != "index.html" {
			if st, err := fs.Stat(web, p); err == nil && !st.IsDir() {
				h.Set("ETag", etags[p])
				static.ServeHTTP(c.Response(), c.Request())
				return nil
			}
			if strings.Contains(path.Base(p), ".") {
				return echo.ErrNotFound // a missing asset, not an app route
			}
		}
		return c.HTMLBlob(http.StatusOK, index)
	})
}
