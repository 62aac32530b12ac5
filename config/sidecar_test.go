package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sidecarYAML is validYAML with the top-level upstream instead of routes.
func sidecarYAML(t *testing.T) string {
	t.Helper()
	i, j := strings.Index(validYAML, "routes:\n"), strings.Index(validYAML, "admin:\n")
	if i < 0 || j < i {
		t.Fatal("validYAML changed shape")
	}
	return validYAML[:i] + "upstream: \"http://127.0.0.1:9000\"\n" + validYAML[j:]
}

func TestSidecarUpstreamImpliesOneRoute(t *testing.T) {
	c, err := Parse([]byte(sidecarYAML(t)), nil, t.TempDir())
	if err != nil {
		t.Fatalf("sidecar config refused: %v", err)
	}
	want := DefaultRoute()
	want.Name, want.PathPrefix, want.Upstream = "default", "/", "http://127.0.0.1:9000"
	if len(c.Routes) != 1 || !reflect.DeepEqual(c.Routes[0], want) {
		t.Fatalf("routes = %+v, want [%+v]", c.Routes, want)
	}
	if !c.Routes[0].Access.Authenticated || c.Routes[0].Access.Public {
		t.Fatalf("sidecar route access = %+v, want authenticated", c.Routes[0].Access)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("a loaded sidecar config does not validate again: %v", err)
	}
}

func TestSidecarUpstreamProblems(t *testing.T) {
	tests := []struct {
		name     string
		yaml     func(t *testing.T) string
		env      []string
		wantKeys []string
		wantMsg  string
	}{
		{name: "with routes", yaml: func(*testing.T) string { return validYAML + "upstream: \"http://127.0.0.1:9000\"\n" },
			wantKeys: []string{"upstream"}, wantMsg: "cannot be combined with routes"},
		{name: "env upstream with file routes", yaml: func(*testing.T) string { return validYAML },
			env: []string{"AUTHGATE_UPSTREAM=http://127.0.0.1:9000"}, wantKeys: []string{"upstream"}},
		{name: "not a URL", yaml: func(t *testing.T) string {
			return strings.Replace(sidecarYAML(t), "http://127.0.0.1:9000", "127.0.0.1:9000", 1)
		}, wantKeys: []string{"upstream"}},
		{name: "query", yaml: func(t *testing.T) string {
			return strings.Replace(sidecarYAML(t), "http://127.0.0.1:9000", "http://127.0.0.1:9000/?x=1", 1)
		}, wantKeys: []string{"upstream"}, wantMsg: "query"},
		{name: "from environment only", yaml: func(t *testing.T) string {
			return strings.Replace(sidecarYAML(t), "upstream: \"http://127.0.0.1:9000\"\n", "", 1)
		}, env: []string{"AUTHGATE_UPSTREAM=http://127.0.0.1:9000"}},
		{name: "neither", yaml: func(t *testing.T) string {
			return strings.Replace(sidecarYAML(t), "upstream: \"http://127.0.0.1:9000\"\n", "", 1)
		}, wantKeys: []string{"routes"}, wantMsg: "top-level upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml(t)), tt.env, t.TempDir())
			assertKeys(t, err, tt.wantKeys)
			if tt.wantMsg != "" {
				assertMsg(t, err, tt.wantMsg)
			}
		})
	}
}

func TestBearerConfig(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		env      []string
		wantKeys []string
		wantAud  []string
	}{
		{name: "disabled by default", wantAud: []string{"authgate"}},
		{name: "audiences and issuers", yaml: "bearer:\n  enabled: true\n  audiences: [\"https://api.example.com\"]\n  trusted_issuers: [\"https://other.example.com/\"]\n",
			wantAud: []string{"https://api.example.com"}},
		{name: "from environment", env: []string{"AUTHGATE_BEARER_ENABLED=true", "AUTHGATE_BEARER_AUDIENCES=api-a, api-b"},
			wantAud: []string{"api-a", "api-b"}},
		{name: "empty audience", yaml: "bearer:\n  audiences: [\"\"]\n", wantKeys: []string{"bearer.audiences[0]"}},
		{name: "duplicate audience", yaml: "bearer:\n  audiences: [a, b, a]\n", wantKeys: []string{"bearer.audiences[2]"}},
		{name: "issuer over http", yaml: "bearer:\n  trusted_issuers: [\"http://idp.example.com\"]\n", wantKeys: []string{"bearer.trusted_issuers[0]"}},
		{name: "issuer on loopback http", yaml: "bearer:\n  trusted_issuers: [\"http://127.0.0.1:5556\"]\n", wantAud: []string{"authgate"}},
		{name: "issuer repeats oidc.issuer", yaml: "bearer:\n  trusted_issuers: [\"https://idp.example.com/\"]\n", wantKeys: []string{"bearer.trusted_issuers[0]"}},
		{name: "issuer with query", yaml: "bearer:\n  trusted_issuers: [\"https://x.example.com/?a=b\"]\n", wantKeys: []string{"bearer.trusted_issuers[0]"}},
		{name: "issuer duplicate", yaml: "bearer:\n  trusted_issuers: [\"https://x.example.com\", \"https://x.example.com\"]\n", wantKeys: []string{"bearer.trusted_issuers[1]"}},
		{name: "unknown key", yaml: "bearer:\n  enable: true\n", wantKeys: []string{"bearer.enable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(validYAML+tt.yaml), tt.env, t.TempDir())
			if tt.wantKeys != nil {
				assertKeys(t, err, tt.wantKeys)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.BearerAudiences(); !slices.Equal(got, tt.wantAud) {
				t.Fatalf("BearerAudiences() = %q, want %q", got, tt.wantAud)
			}
		})
	}
}
