package oidcop_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv/oidcop"
)

// authURL reads the provider's discovery document and returns an
// authorization URL for client "app" with the given state.
func authURL(t *testing.T, p *oidcop.Provider, state string) string {
	t.Helper()
	resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc struct {
		Issuer        string `json:"issuer"`
		Authorization string `json:"authorization_endpoint"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	require.Equal(t, p.Issuer, doc.Issuer)
	return doc.Authorization + "?" + url.Values{
		"client_id":     {"app"},
		"redirect_uri":  {"http://127.0.0.1:9/cb"},
		"response_type": {"code"},
		"scope":         {"openid email"},
		"state":         {state},
		"nonce":         {"n-1"},
	}.Encode()
}

func TestOIDCLogin(t *testing.T) {
	p := oidcop.Start(t, oidcop.Options{
		Users:   []oidcop.User{{Email: "ada@example.com", EmailVerified: true, Password: "pw"}},
		Clients: []oidcop.Client{{ID: "app", Secret: "s", RedirectURIs: []string{"http://127.0.0.1:9/cb"}}},
	})
	ctx := context.Background()

	cb, err := p.Login(ctx, authURL(t, p, "st-1"), "ada@example.com", "pw")
	require.NoError(t, err)
	assert.Equal(t, "/cb", cb.Path)
	assert.Equal(t, "st-1", cb.Query().Get("state"))
	assert.NotEmpty(t, cb.Query().Get("code"))

	_, err = p.Login(ctx, authURL(t, p, "st-2"), "ada@example.com", "wrong")
	assert.ErrorContains(t, err, "refused the credentials")
}
