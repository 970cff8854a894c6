package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"dealroom/api"
	"dealroom/boltstore"
	"dealroom/diskblob"
	"dealroom/jwtauth"
	"dealroom/room"
)

// openapiNotImplemented marks an operation that the contract describes but
// the router does not serve yet (the websocket). Such an operation must not
// be routed: once it is, the mark has to go.
const openapiNotImplemented = "x-dealroom-not-implemented"

// openapiMethods are the operations an OpenAPI path item can hold.
var openapiMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openapiServer builds the API the way cmd/dealroom does, on the embedded
// store in a temporary directory.
func openapiServer(t *testing.T) *api.Server {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	blobs, err := diskblob.Open(filepath.Join(dir, "attachments"))
	require.NoError(t, err)
	keys, err := jwtauth.New(jwtauth.Config{Secret: bytes.Repeat([]byte("s"), jwtauth.MinSecret)})
	require.NoError(t, err)
	svc := &room.Service{Store: store, Blobs: blobs}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return api.New(api.Config{}, svc, keys, log, api.NewMetrics(), map[string]api.Pinger{"store": store})
}

// openapiFetch gets the spec the server serves, checks it is the file in
// the repository, and parses it.
func openapiFetch(t *testing.T, srv *api.Server) map[string]any {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.yaml", nil))
	require.Equal(t, http.StatusOK, rec.Code, "GET /api/v1/openapi.yaml: %s", rec.Body.String())
	assert.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	onDisk, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	require.Equal(t, string(onDisk), rec.Body.String(), "the served spec differs from api/openapi.yaml")

	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(rec.Body.Bytes(), &doc), "api/openapi.yaml is not valid YAML")
	require.NotEmpty(t, doc, "api/openapi.yaml is empty")
	return doc
}

// openapiMap reads a mapping out of the parsed document.
func openapiMap(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "%s must be a mapping, not %T", what, v)
	return m
}

// openapiOperations returns the spec's operations as "METHOD /path", split
// into the implemented ones and those marked not implemented yet.
func openapiOperations(t *testing.T, doc map[string]any) (implemented, pending map[string]bool) {
	t.Helper()
	implemented, pending = map[string]bool{}, map[string]bool{}
	paths := openapiMap(t, doc["paths"], "paths")
	for path, item := range paths {
		for method, op := range openapiMap(t, item, "paths."+path) {
			if !openapiIsMethod(method) {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			if mark, _ := openapiMap(t, op, key)[openapiNotImplemented].(bool); mark {
				pending[key] = true
			} else {
				implemented[key] = true
			}
		}
	}
	return implemented, pending
}

func openapiIsMethod(m string) bool {
	for _, x := range openapiMethods {
		if m == x {
			return true
		}
	}
	return false
}

var openapiEchoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// openapiRoutes returns the router's routes as "METHOD /path" with OpenAPI
// path templates, leaving out the catch-all routes (".../*") and Echo's
// internal not-found registrations.
func openapiRoutes(srv *api.Server) map[string]bool {
	out := map[string]bool{}
	for _, r := range srv.Echo().Routes() {
		if strings.Contains(r.Path, "*") || !openapiIsMethod(strings.ToLower(r.Method)) {
			continue
		}
		out[r.Method+" "+openapiEchoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	return out
}

func openapiMinus(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	doc := openapiFetch(t, openapiServer(t))

	version, _ := doc["openapi"].(string)
	assert.Regexp(t, `^3\.0\.\d+$`, version, "the spec must be OpenAPI 3.0.x")
	info := openapiMap(t, doc["info"], "info")
	assert.NotEmpty(t, info["title"], "info.title")
	assert.NotEmpty(t, info["version"], "info.version")
	assert.NotEmpty(t, openapiMap(t, doc["paths"], "paths"), "paths")

	schemes := openapiMap(t, openapiMap(t, doc["components"], "components")["securitySchemes"], "components.securitySchemes")
	bearer := openapiMap(t, schemes["bearerAuth"], "components.securitySchemes.bearerAuth")
	assert.Equal(t, "http", bearer["type"])
	assert.Equal(t, "bearer", bearer["scheme"])

	errSchema := openapiMap(t, openapiMap(t, openapiMap(t, doc["components"], "components")["schemas"], "components.schemas")["Error"], "components.schemas.Error")
	errProps := openapiMap(t, openapiMap(t, openapiMap(t, errSchema["properties"], "Error.properties")["error"], "Error.properties.error")["properties"], "Error.error.properties")
	codes, _ := openapiMap(t, errProps["code"], "Error.error.code")["enum"].([]any)
	for _, c := range []string{"bad_request", "invalid_field", "unauthenticated", "forbidden", "not_found",
		"conflict", "payload_too_large", "rate_limited", "unavailable"} {
		assert.Contains(t, codes, c, "the Error schema's code enum")
	}
}

// TestOpenAPIRoutesMatchRouter keeps the spec and the code in step: every
// route the router serves is described, and every operation described
// (except those marked not implemented) is served.
func TestOpenAPIRoutesMatchRouter(t *testing.T) {
	srv := openapiServer(t)
	doc := openapiFetch(t, srv)
	described, pending := openapiOperations(t, doc)
	routed := openapiRoutes(srv)
	require.NotEmpty(t, routed, "the router has no routes")

	var problems []string
	if missing := openapiMinus(routed, described); len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("routes served but not in api/openapi.yaml (describe them):\n\t%s",
			strings.Join(missing, "\n\t")))
	}
	if extra := openapiMinus(described, routed); len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("operations in api/openapi.yaml that the router does not serve (remove them, or mark them %s: true):\n\t%s",
			openapiNotImplemented, strings.Join(extra, "\n\t")))
	}
	var nowServed []string
	for op := range pending {
		if routed[op] {
			nowServed = append(nowServed, op)
		}
	}
	sort.Strings(nowServed)
	if len(nowServed) > 0 {
		problems = append(problems, fmt.Sprintf("operations marked %s that the router serves now (drop the mark and check the description):\n\t%s",
			openapiNotImplemented, strings.Join(nowServed, "\n\t")))
	}
	if len(problems) > 0 {
		t.Fatalf("api/openapi.yaml and the routes in api/api.go differ:\n%s", strings.Join(problems, "\n"))
	}
}

var openapiTemplateParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPIOperationsWellFormed checks what a generator or a validator
// would trip over: dangling $refs, duplicate operation ids, operations
// without responses, and path parameters that are not declared (or
// declared but not in the path).
func TestOpenAPIOperationsWellFormed(t *testing.T) {
	doc := openapiFetch(t, openapiServer(t))

	var dangling []string
	openapiWalkRefs(doc, func(ref string) {
		if _, ok := openapiResolve(doc, ref); !ok {
			dangling = append(dangling, ref)
		}
	})
	sort.Strings(dangling)
	assert.Empty(t, dangling, "$refs that point at nothing")

	ids := map[string]string{}
	paths := openapiMap(t, doc["paths"], "paths")
	for path, rawItem := range paths {
		item := openapiMap(t, rawItem, "paths."+path)
		want := map[string]bool{}
		for _, m := range openapiTemplateParam.FindAllStringSubmatch(path, -1) {
			want[m[1]] = true
		}
		common := openapiPathParams(t, doc, item["parameters"], path)
		for method, rawOp := range item {
			if !openapiIsMethod(method) {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			op := openapiMap(t, rawOp, key)

			id, _ := op["operationId"].(string)
			if assert.NotEmpty(t, id, "%s has no operationId", key) {
				if other, dup := ids[id]; dup {
					t.Errorf("operationId %q is used by %s and %s", id, other, key)
				}
				ids[id] = key
			}
			responses, _ := op["responses"].(map[string]any)
			assert.NotEmpty(t, responses, "%s has no responses", key)
			assert.NotEmpty(t, op["description"], "%s has no description", key)

			declared := map[string]bool{}
			for name := range common {
				declared[name] = true
			}
			for name := range openapiPathParams(t, doc, op["parameters"], key) {
				declared[name] = true
			}
			for name := range want {
				assert.True(t, declared[name], "%s: path parameter {%s} is not declared", key, name)
			}
			for name := range declared {
				assert.True(t, want[name], "%s: path parameter %q is declared but not in the path", key, name)
			}
		}
	}
}

// openapiPathParams returns the names of the `in: path` parameters of a
// parameter list, following $refs.
func openapiPathParams(t *testing.T, doc map[string]any, raw any, where string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if raw == nil {
		return out
	}
	list, ok := raw.([]any)
	require.True(t, ok, "%s: parameters must be a list", where)
	for _, p := range list {
		pm := openapiMap(t, p, where+" parameter")
		if ref, ok := pm["$ref"].(string); ok {
			target, found := openapiResolve(doc, ref)
			require.True(t, found, "%s: parameter %s points at nothing", where, ref)
			pm = openapiMap(t, target, ref)
		}
		if pm["in"] == "path" {
			name, _ := pm["name"].(string)
			assert.Equal(t, true, pm["required"], "%s: path parameter %q must be required", where, name)
			out[name] = true
		}
	}
	return out
}

// openapiWalkRefs calls f with every $ref in the document.
func openapiWalkRefs(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				f(s)
				continue
			}
			openapiWalkRefs(e, f)
		}
	case []any:
		for _, e := range x {
			openapiWalkRefs(e, f)
		}
	}
}

// openapiResolve follows a local reference ("#/components/schemas/Room").
func openapiResolve(doc map[string]any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// TestOpenAPIOtherMethods checks that every path of the contract answers a
// method it does not list with 405, the contract's error body and an Allow
// header naming exactly the methods the contract lists (for the API's
// paths), and that a path that is no route stays a 404.
func TestOpenAPIOtherMethods(t *testing.T) {
	srv := openapiServer(t)
	doc := openapiFetch(t, srv)
	paths := openapiMap(t, doc["paths"], "paths")
	for path, item := range paths {
		var listed []string
		for method := range openapiMap(t, item, "paths."+path) {
			if openapiIsMethod(method) {
				listed = append(listed, strings.ToUpper(method))
			}
		}
		sort.Strings(listed)
		concrete := openapiTemplateParam.ReplaceAllString(path, "x1")
		for _, method := range []string{"GET", "PUT", "POST", "DELETE", "PATCH", "TRACE", "OPTIONS", "HEAD", "QUERY", "PROPFIND"} {
			if slices.Contains(listed, method) || (method == "OPTIONS" && !strings.HasPrefix(path, "/api/v1/")) {
				continue // Echo answers OPTIONS on the operations routes itself (204 with Allow)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(method, concrete, nil))
			require.Equal(t, http.StatusMethodNotAllowed, rec.Code, "%s %s: %s", method, concrete, rec.Body.String())
			allow := strings.Split(rec.Header().Get("Allow"), ", ")
			if strings.HasPrefix(path, "/api/v1/") {
				assert.Equal(t, listed, allow, "%s %s: Allow", method, concrete)
			} else {
				assert.Subset(t, allow, listed, "%s %s: Allow", method, concrete)
			}
			if method != "HEAD" {
				assert.JSONEq(t, `"method_not_allowed"`, openapiErrorCode(t, rec.Body.Bytes()), "%s %s", method, concrete)
			}
		}
	}
	for _, p := range []string{"/api/v1/nothing", "/api/v1/rooms/x1/nothing", "/api/v1/me/x1"} {
		for _, method := range []string{"GET", "TRACE", "PUT", "QUERY"} {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(method, p, nil))
			assert.Equal(t, http.StatusNotFound, rec.Code, "%s %s: %s", method, p, rec.Body.String())
			assert.Empty(t, rec.Header().Get("Allow"), "%s %s", method, p)
		}
	}
}

func openapiErrorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code json.RawMessage `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	return string(e.Error.Code)
}
