package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/api"
	"dealroom/boltstore"
	"dealroom/diskblob"
	"dealroom/jwtauth"
	"dealroom/room"
)

// switchable stands for a backend whose Ping a test switches off.
type switchable struct{ down atomic.Bool }

func (b *switchable) Ping(context.Context) error {
	if b.down.Load() {
		return errors.New("connection refused")
	}
	return nil
}

// TestReadyzExclude: /readyz is 503 when any backend fails; a probe may
// exclude one (a broker whose outage every instance shares), which is
// still reported but does not make the answer 503; an exclude that names
// no backend is refused.
func TestReadyzExclude(t *testing.T) {
	dir := t.TempDir()
	store, err := boltstore.Open(dir)
	require.NoError(t, err)
	blobs, err := diskblob.Open(filepath.Join(dir, "attachments"))
	require.NoError(t, err)
	b := &switchable{}
	keys, err := jwtauth.New(jwtauth.Config{Secret: testSecret})
	require.NoError(t, err)
	srv := api.New(api.Config{}, &room.Service{Store: store, Blobs: blobs}, keys, slog.New(slog.NewTextHandler(io.Discard, nil)),
		api.NewMetrics(), map[string]api.Pinger{"store": store, "broker": b})
	ready := func(query string) (int, string) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz"+query, nil))
		return rec.Code, rec.Body.String()
	}

	code, body := ready("")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"store": "ok", "broker": "ok"}`, body)

	b.down.Store(true)
	code, body = ready("")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.JSONEq(t, `{"store": "ok", "broker": "unavailable"}`, body)
	code, body = ready("?exclude=broker")
	assert.Equal(t, http.StatusOK, code, "the broker left out of the decision")
	assert.JSONEq(t, `{"store": "ok", "broker": "unavailable"}`, body, "and still reported")
	code, _ = ready("?exclude=store")
	assert.Equal(t, http.StatusServiceUnavailable, code, "excluding another backend does not help")
	code, _ = ready("?exclude=store&exclude=broker")
	assert.Equal(t, http.StatusOK, code)

	code, body = ready("?exclude=redis")
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Contains(t, body, "broker, store")
	assert.Contains(t, body, `"field":"exclude"`)

	require.NoError(t, store.Close())
	code, body = ready("?exclude=broker")
	assert.Equal(t, http.StatusServiceUnavailable, code, "a closed store is never excluded unless named")
	assert.JSONEq(t, `{"store": "unavailable", "broker": "unavailable"}`, body)
}
