package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun: the process prints its issuer, serves the provider's
// discovery document there, and stops when its context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-options", `{"Users": [{"Email": "rita@example.com", "Password": "pw"}],
			"Clients": [{"ID": "dealroom", "Secret": "s", "RedirectURIs": ["http://127.0.0.1:1/cb"]}]}`}, w)
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	issuer, ok := strings.CutPrefix(strings.TrimSpace(line), "issuer ")
	require.True(t, ok, line)

	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		Issuer string `json:"issuer"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, issuer, doc.Issuer)

	cancel()
	require.NoError(t, <-done)
	_, err = http.Get(issuer + "/.well-known/openid-configuration")
	assert.Error(t, err, "stopped")
}

// TestRunNeedsOptions: without users and clients there is nothing to serve.
func TestRunNeedsOptions(t *testing.T) {
	err := run(context.Background(), []string{"-options", `{}`}, io.Discard)
	assert.ErrorContains(t, err, "at least one user and one client")
	err = run(context.Background(), nil, io.Discard)
	assert.ErrorContains(t, err, "-options")
}
