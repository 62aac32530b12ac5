package config

import (
	"slices"
	"strings"
	"testing"
)

// Secrets used by the tests: base64 of 32 bytes each.
const (
	testSecretA = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"
	testSecretB = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=" // "abcdefghijklmnopqrstuvwxyz123456"
	testToken   = "admin-token-0123456789"
)

// validYAML is a small complete configuration; tests change one thing and look at the result.
const validYAML = `
server:
  public_url: "https://app.example.com"
oidc:
  issuer: "https://idp.example.com/"
  client_id: "authgate"
  client_secret: "client-secret-value"
session:
  secrets: ["` + testSecretA + `"]
database:
  url: "postgres://authgate@127.0.0.1:5432/authgate?sslmode=disable"
routes:
  - name: admin
    path_prefix: "/admin/"
    upstream: "http://127.0.0.1:9001"
    access: {roles: ["super_admin"]}
  - name: app
    path_prefix: "/"
    upstream: "http://127.0.0.1:9002"
admin:
  token: "` + testToken + `"
`

// validConfig parses validYAML; it fails the test if that does not validate.
func validConfig(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte(validYAML), nil, t.TempDir())
	if err != nil {
		t.Fatalf("validYAML does not parse: %v", err)
	}
	return c
}

// errorKeys returns the key of every problem in err, in order.
func errorKeys(err error) []string {
	var keys []string
	for _, p := range Problems(err) {
		keys = append(keys, p.Key)
	}
	return keys
}

// assertKeys fails unless err holds exactly the problems at wantKeys (in any order).
func assertKeys(t *testing.T, err error, wantKeys []string) {
	t.Helper()
	got := slices.Sorted(slices.Values(errorKeys(err)))
	want := slices.Sorted(slices.Values(wantKeys))
	if !slices.Equal(got, want) {
		t.Fatalf("problem keys = %q, want %q\nfull error:\n%v", got, want, err)
	}
}

// assertMsg fails unless err has a problem whose full text contains want.
func assertMsg(t *testing.T, err error, want string) {
	t.Helper()
	for _, p := range Problems(err) {
		if strings.Contains(p.Error(), want) {
			return
		}
	}
	t.Fatalf("no problem contains %q; got:\n%v", want, err)
}
