package api

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"dealroom"
)

// TestErrorCodesDocumented keeps what integrators read in step with what
// the API sends: the error codes table of docs/architecture.md names, for
// every domain code, the status and the wire code of the one table of
// dealroom.PublicOf, and the contract's Error schema lists every wire code.
func TestErrorCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/architecture.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(doc), "\n## Error codes\n")
	require.True(t, ok, "docs/architecture.md has an Error codes section")
	section, _, _ = strings.Cut(section, "\n## ")

	// The one table (dealroom.PublicOf), by domain code.
	codes := map[string]struct {
		status int
		code   string
	}{}
	for _, c := range dealroom.Codes() {
		p := dealroom.PublicOf(&dealroom.Error{Code: c})
		codes[c] = struct {
			status int
			code   string
		}{p.Status, p.Code}
	}
	firstCode := regexp.MustCompile("`([a-z_]+)`")
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cols := strings.Split(line, "|")
		if len(cols) != 5 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "`") {
			continue
		}
		domain := firstCode.FindStringSubmatch(cols[1])[1]
		m, known := codes[domain]
		if !assert.True(t, known, "docs/architecture.md names domain code %q, which errors.go does not map", domain) {
			continue
		}
		documented[domain] = true
		status, err := strconv.Atoi(strings.TrimRight(strings.Fields(cols[2])[0], ","))
		require.NoError(t, err, "status of %q", domain)
		assert.Equal(t, m.status, status, "HTTP status of %q", domain)
		wire := firstCode.FindStringSubmatch(cols[3])
		if assert.NotNil(t, wire, "wire code of %q", domain) {
			assert.Equal(t, m.code, wire[1], "the code clients see for %q", domain)
		}
	}
	for domain := range codes {
		assert.True(t, documented[domain], "docs/architecture.md's Error codes table lacks %q", domain)
	}

	raw, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	var spec struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct {
									Enum []string `yaml:"enum"`
								} `yaml:"code"`
							} `yaml:"properties"`
						} `yaml:"error"`
					} `yaml:"properties"`
				} `yaml:"Error"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &spec))
	enum := spec.Components.Schemas.Error.Properties.Error.Properties.Code.Enum
	for domain, m := range codes {
		assert.Contains(t, enum, m.code, "the contract's Error.code enum lacks the code sent for %q", domain)
	}
}
