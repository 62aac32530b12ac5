package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic or hang; an accepted config must
// validate and give usable secret keys, and every problem must be one line naming a key.
// Run longer with: go test -run '^$' -fuzz FuzzParse -fuzztime 60s ./config/
func FuzzParse(f *testing.F) {
	f.Add(Example())
	f.Add([]byte(validYAML))
	if bad, err := os.ReadFile(filepath.Join("testdata", "bad.yaml")); err == nil {
		f.Add(bad)
	}
	for _, seed := range []string{
		"",
		"~",
		"- a",
		"server: {public_url: 'http://[::1]:8080'}",
		"routes: [{name: a, access: {roles: [x]}}, {<<: {name: b}}]",
		"a: &a [*a]\nroutes: *a",
		"session: {secrets: [!!binary aGVsbG8=]}",
		"routes:\n  - access: public\n    timeout: 1ns\n  - access: authenticated",
		"server:\n  listen: \"\\x00\"",
		"---\n---\n",
	} {
		f.Add([]byte(seed))
	}
	env := []string{"AUTHGATE_OIDC_CLIENT_SECRET=x", "AUTHGATE_SESSION_SECRETS=" + testSecretA, "AUTHGATE_ADMIN_TOKEN=" + testToken}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, env, t.TempDir())
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config together with an error")
			}
			problems := Problems(err)
			if len(problems) == 0 {
				t.Fatal("error without problems")
			}
			for _, p := range problems {
				if p.Msg == "" || strings.Contains(p.Error(), "\n") {
					t.Fatalf("malformed problem %q", p.Error())
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		if keys, err := c.SecretKeys(); err != nil || len(keys) == 0 {
			t.Fatalf("accepted config has unusable secrets: %v", err)
		}
	})
}
