package api

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Every operation is both a REST route of the contract and a websocket
// command the contract names, and the contract names no command that is
// not declared: one declaration makes both paths (ops.go).
func TestOperationsAreTheContractsCommandsAndRoutes(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &spec))

	_, ws, ok := strings.Cut(string(raw), "Command ops:")
	require.True(t, ok, "the contract lists the websocket's command ops")
	ws, _, _ = strings.Cut(ws, "A command is the same operation")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:room|member|task|message|invite)\\.[a-z]+)`").FindAllStringSubmatch(ws, -1) {
		named[m[1]] = true
	}

	declared := map[string]bool{}
	param := regexp.MustCompile(`:([a-z]+)`)
	for _, o := range operations {
		name := o.opName()
		assert.False(t, declared[name], "%s is declared once", name)
		declared[name] = true
		assert.True(t, named[name], "the contract's websocket section names the command %s", name)

		method, path := o.route()
		path = "/api/v1" + param.ReplaceAllString(path, "{$1}")
		methods, ok := spec.Paths[path]
		if assert.True(t, ok, "the contract has the path %s of %s", path, name) {
			assert.Contains(t, methods, strings.ToLower(method), "the contract has %s %s for %s", method, path, name)
		}
	}
	for name := range named {
		assert.True(t, declared[name], "the contract names the command %s, which no operation declares", name)
	}
}
