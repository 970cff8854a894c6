package frontend

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func newServer(tb testing.TB) *echo.Echo {
	tb.Helper()
	e := echo.New()
	Register(e)
	return e
}

func get(tb testing.TB, e *echo.Echo, target string, header ...string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func webFS(tb testing.TB) fs.FS {
	tb.Helper()
	web, err := fs.Sub(files, "web")
	if err != nil {
		tb.Fatal(err)
	}
	return web
}

func TestAssetsHaveTheirContentTypes(t *testing.T) {
	e := newServer(t)
	for _, tc := range []struct{ path, want string }{
		{"/", "text/html"},
		{"/index.html", "text/html"},
		{"/app.js", "text/javascript"},
		{"/views/room.js", "text/javascript"},
		{"/sw.js", "text/javascript"}, // a service worker must be JavaScript, at the root for its scope
		{"/styles.css", "text/css"},
		{"/icon.svg", "image/svg+xml"},
	} {
		rec := get(t, e, tc.path)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, rec.Code)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.want) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.want)
		}
		if rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", tc.path)
		}
	}
}

func TestAssetsRevalidateByETag(t *testing.T) {
	e := newServer(t)
	rec := get(t, e, "/app.js")
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: ETag %q, Cache-Control %q", etag, rec.Header().Get("Cache-Control"))
	}
	if rec := get(t, e, "/app.js", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("app.js with its ETag: status %d, want 304", rec.Code)
	}
}

// Deep links into the app open the app; missing assets stay missing.
func TestSPAFallback(t *testing.T) {
	e := newServer(t)
	index := get(t, e, "/").Body.String()
	if !strings.Contains(index, `src="/app.js"`) {
		t.Fatalf("index.html does not load /app.js")
	}
	for _, p := range []string{
		"/room/r_06h14xn9apmr5gme58m9sam920", "/room/r_1/timeline", "/room/r_1/task/t_2",
		"/invite/62meem24jmd29b9da6t3hfeye2mg", "/me/tasks", "/inbox", "/pipeline", "/sign-in", "/views",
	} {
		rec := get(t, e, p)
		if rec.Code != http.StatusOK || rec.Body.String() != index {
			t.Errorf("GET %s: status %d, index.html: %v", p, rec.Code, rec.Body.String() == index)
		}
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: Content-Type %q", p, rec.Header().Get("Content-Type"))
		}
	}
	for _, p := range []string{"/missing.js", "/views/missing.js", "/room/r_1/app.css"} {
		if rec := get(t, e, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, rec.Code)
		}
	}
}

var importRE = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'`)

// Every module the app imports is among the embedded files, and every
// file the page names exists: a typo would leave a blank page.
func TestModulesResolve(t *testing.T) {
	web := webFS(t)
	index, err := fs.ReadFile(web, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="/([^"]+)"`).FindAllStringSubmatch(string(index), -1) {
		if _, err := fs.Stat(web, m[1]); err != nil {
			t.Errorf("index.html names /%s, which is not embedded", m[1])
		}
	}
	imports := 0
	err = fs.WalkDir(web, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" {
			return err
		}
		src, err := fs.ReadFile(web, p)
		if err != nil {
			return err
		}
		for _, m := range importRE.FindAllStringSubmatch(string(src), -1) {
			spec := m[1] + m[2]
			imports++
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only the app's own modules, by relative path", p, spec)
				continue
			}
			target := path.Join(path.Dir(p), spec)
			if _, err := fs.Stat(web, target); err != nil {
				t.Errorf("%s imports %q, which is not embedded (%s)", p, spec, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if imports < 10 {
		t.Errorf("found only %d imports: the pattern no longer reads the modules", imports)
	}
}

// User text must never be parsed as HTML. The app builds its page with DOM
// APIs and textContent; this static guard fails on the ways to inject
// markup from a variable.
var htmlSinks = []struct {
	re   *regexp.Regexp
	what string
}{
	// An assignment whose right side is anything but one plain string literal.
	{regexp.MustCompile(`\.(?:innerHTML|outerHTML)\s*\+?=\s*(?:[^'"\s]|'[^']*'\s*[^;\s]|"[^"]*"\s*[^;\s])`), "innerHTML/outerHTML set from a variable or expression"},
	{regexp.MustCompile(`\.(?:innerHTML|outerHTML)\s*\+?=\s*` + "`"), "innerHTML/outerHTML set from a template string"},
	{regexp.MustCompile(`insertAdjacentHTML\s*\(`), "insertAdjacentHTML"},
	{regexp.MustCompile(`document\.write(?:ln)?\s*\(`), "document.write"},
	{regexp.MustCompile(`createContextualFragment\s*\(`), "createContextualFragment"},
	{regexp.MustCompile(`\beval\s*\(|new\s+Function\s*\(`), "eval or new Function"},
}

func TestNoHTMLFromVariables(t *testing.T) {
	web := webFS(t)
	err := fs.WalkDir(web, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (path.Ext(p) != ".js" && path.Ext(p) != ".html") {
			return err
		}
		src, err := fs.ReadFile(web, p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, s := range htmlSinks {
				if s.re.MatchString(line) {
					t.Errorf("%s:%d: %s: %s", p, i+1, s.what, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The guard itself catches what it is meant to catch.
func TestHTMLGuardCatches(t *testing.T) {
	bad := []string{
		"el.innerHTML = msg.body;",
		"el.innerHTML += name",
		"el.innerHTML = `<b>${name}</b>`;",
		"el.innerHTML = '<b>' + name;",
		"el.outerHTML=html",
		"el.insertAdjacentHTML('beforeend', x)",
		"document.write(x)",
	}
	good := []string{"el.innerHTML = '';", `el.innerHTML = "";`, "el.textContent = msg.body;"}
	match := func(line string) bool {
		for _, s := range htmlSinks {
			if s.re.MatchString(line) {
				return true
			}
		}
		return false
	}
	for _, l := range bad {
		if !match(l) {
			t.Errorf("not caught: %s", l)
		}
	}
	for _, l := range good {
		if match(l) {
			t.Errorf("caught, but harmless: %s", l)
		}
	}
}
