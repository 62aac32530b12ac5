package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// withRoutes returns validYAML with its routes replaced by the given YAML block (indented by 2).
func withRoutes(routes string) string {
	head, _, _ := strings.Cut(validYAML, "routes:")
	_, tail, _ := strings.Cut(validYAML, "admin:")
	return head + "routes:\n" + routes + "admin:" + tail
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantKeys []string
		wantMsg  string
	}{
		{name: "unknown top-level key", yaml: validYAML + "serve:\n  listen: x\n", wantKeys: []string{"serve"}, wantMsg: "serve: unknown key"},
		{name: "unknown nested key", yaml: strings.Replace(validYAML, "session:\n", "session:\n  cookie_nam: x\n", 1),
			wantKeys: []string{"session.cookie_nam"}, wantMsg: `did you mean "cookie_name"?`},
		{name: "unknown claims key", yaml: strings.Replace(validYAML, "oidc:\n", "oidc:\n  claims: {role: r}\n", 1),
			wantKeys: []string{"oidc.claims.role"}},
		{name: "unknown route key", yaml: withRoutes("  - name: app\n    path_prefix: /\n    upstrem: http://x\n"),
			wantKeys: []string{"routes[0].upstrem", "routes[0].upstream"}},
		{name: "unknown access key", yaml: withRoutes("  - name: app\n    path_prefix: /\n    upstream: http://x\n    access: {role: [a]}\n"),
			wantKeys: []string{"routes[0].access.role", "routes[0].access"}},
		{name: "access flags are not keys", yaml: withRoutes("  - name: app\n    path_prefix: /\n    upstream: http://x\n    access: {public: true}\n"),
			wantKeys: []string{"routes[0].access.public", "routes[0].access"}},
		{name: "access unknown scalar", yaml: withRoutes("  - name: app\n    path_prefix: /\n    upstream: http://x\n    access: admins\n"),
			wantKeys: []string{"routes[0].access"}, wantMsg: `must be "public", "authenticated"`},
		{name: "access list", yaml: withRoutes("  - name: app\n    path_prefix: /\n    upstream: http://x\n    access: [admin]\n"),
			wantKeys: []string{"routes[0].access"}},
		{name: "duplicate key", yaml: strings.Replace(validYAML, "server:\n", "server:\n  listen: \":1\"\n  listen: \":2\"\n", 1),
			wantKeys: []string{"server.listen"}, wantMsg: "duplicate key"},
		{name: "bool of wrong type", yaml: strings.Replace(validYAML, "database:\n", "database:\n  auto_migrate: maybe\n", 1),
			wantKeys: []string{"database.auto_migrate"}, wantMsg: "database.auto_migrate: expected true or false (line"},
		{name: "top-level key twice", yaml: validYAML + "database:\n  auto_migrate: false\n", wantKeys: []string{"database"}, wantMsg: "duplicate key"},
		{name: "wrong type keeps going", yaml: strings.Replace(validYAML, "session:\n", "session:\n  secure: maybe\n  idle_timeout: 30\n", 1),
			wantKeys: []string{"session.secure", "session.idle_timeout"}, wantMsg: "expected a duration"},
		{name: "route timeout without unit", yaml: withRoutes("  - name: app\n    path_prefix: /\n    upstream: http://x\n    timeout: 30\n"),
			wantKeys: []string{"routes[0].timeout"}},
		{name: "routes not a list", yaml: withRoutes("    name: app\n"), wantKeys: []string{"routes"}},
		{name: "section not a mapping", yaml: validYAML + "cors: [a]\n", wantKeys: []string{"cors"}},
		{name: "top level not a mapping", yaml: "- a\n- b\n", wantKeys: []string{""}},
		{name: "invalid yaml", yaml: "server: [\n", wantKeys: []string{""}, wantMsg: "invalid YAML"},
		{name: "two documents", yaml: validYAML + "---\nserver: {}\n", wantKeys: []string{""}, wantMsg: "only one document"},
		{name: "line numbers", yaml: "server:\n  public_url: https://a.example\n  bogus: 1\n", wantMsg: "(line 3)",
			wantKeys: []string{"server.bogus", "oidc.issuer", "oidc.client_id", "oidc.client_secret", "session.secrets", "database.url", "routes", "admin.token"}},
		{name: "alias cycle", yaml: "server: &a\n  listen: *a\n", wantKeys: []string{"server.listen", "server.public_url", "oidc.issuer", "oidc.client_id",
			"oidc.client_secret", "session.secrets", "database.url", "routes", "admin.token"}},
		{name: "non-string key", yaml: validYAML + "cors:\n  ? [a]\n  : b\n", wantKeys: []string{"cors"}, wantMsg: "keys must be plain strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil, t.TempDir())
			if err == nil {
				t.Fatal("Parse succeeded, want problems")
			}
			assertKeys(t, err, tt.wantKeys)
			if tt.wantMsg != "" {
				assertMsg(t, err, tt.wantMsg)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	c := validConfig(t)
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.listen", c.Server.Listen, ":8080"},
		{"server.shutdown_grace", c.Server.ShutdownGrace, 15 * time.Second},
		{"server.log_level", c.Server.LogLevel, "info"},
		{"server.login_rate_limit", c.Server.LoginRateLimit, 60},
		{"oidc.scopes", strings.Join(c.OIDC.Scopes, " "), "openid profile email offline_access"},
		{"oidc.claims.roles", c.OIDC.Claims.Roles, "roles"},
		{"oidc.claims.groups", c.OIDC.Claims.Groups, "groups"},
		{"oidc.post_logout_redirect", c.OIDC.PostLogoutRedirect, "/"},
		{"session.store", c.Session.Store, "redis"},
		{"session.redis_url", c.Session.RedisURL, "redis://127.0.0.1:6379/0"},
		{"session.cookie_name", c.Session.CookieName, "__Host-authgate"},
		{"session.same_site", c.Session.SameSite, "lax"},
		{"session.secure", c.Session.Secure, true},
		{"session.idle_timeout", c.Session.IdleTimeout, 30 * time.Minute},
		{"session.absolute_timeout", c.Session.AbsoluteTimeout, 12 * time.Hour},
		{"database.auto_migrate", c.Database.AutoMigrate, true},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9091"},
		{"routes[1].access", c.Routes[1].Access.Authenticated, true},
		{"routes[1].timeout", c.Routes[1].Timeout, 30 * time.Second},
		{"routes[1].csrf", c.Routes[1].CSRF, "origin"},
		{"routes[0].access.roles", strings.Join(c.Routes[0].Access.Roles, ","), "super_admin"},
		{"routes[0].access authenticated", c.Routes[0].Access.Authenticated, false},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.key, ck.got, ck.want)
		}
	}
}

func TestParseExplicitValuesBeatDefaults(t *testing.T) {
	yaml := strings.Replace(validYAML, "database:\n", "database:\n  auto_migrate: false\n", 1)
	yaml = strings.Replace(yaml, "session:\n", "session:\n  idle_timeout: 1h\n  absolute_timeout: 24h\n  store: memory\n", 1)
	yaml = strings.Replace(yaml, "oidc:\n", "oidc:\n  scopes: [openid]\n  auth_params: {audience: \"https://api\"}\n", 1)
	yaml = strings.Replace(yaml, "admin:\n", "admin:\n  listen: \"\"\n", 1)
	c, err := Parse([]byte(yaml), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.AutoMigrate || c.Session.IdleTimeout != time.Hour || c.Session.AbsoluteTimeout != 24*time.Hour ||
		c.Session.Store != StoreMemory || !slices.Equal(c.OIDC.Scopes, []string{"openid"}) ||
		c.OIDC.AuthParams["audience"] != "https://api" || c.Admin.Listen != "" {
		t.Fatalf("explicit values not applied: %+v %+v %+v %+v", c.Database, c.Session, c.OIDC, c.Admin)
	}
}

func TestParseNullKeepsDefaults(t *testing.T) {
	yaml := validYAML + "cors:\n"
	yaml = strings.Replace(yaml, "session:\n", "session:\n  idle_timeout: ~\n  secure: null\n", 1)
	c, err := Parse([]byte(yaml), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Session.IdleTimeout != 30*time.Minute || !c.Session.Secure {
		t.Fatalf("null replaced a default: %+v", c.Session)
	}
}

func TestParseAccessForms(t *testing.T) {
	c, err := Parse([]byte(withRoutes(`  - name: a
    path_prefix: /a/
    upstream: http://x
    access: public
  - name: b
    path_prefix: /b/
    upstream: http://x
    access: authenticated
  - name: c
    path_prefix: /c/
    upstream: http://x
    access: {groups: [ops], emails: [bob@example.com], email_domains: [example.com]}
`)), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	a, b, cc := c.Routes[0].Access, c.Routes[1].Access, c.Routes[2].Access
	if !a.Public || a.Authenticated || !b.Authenticated || b.Public || cc.Authenticated || !cc.HasRules() ||
		cc.Groups[0] != "ops" || cc.Emails[0] != "bob@example.com" || cc.EmailDomains[0] != "example.com" {
		t.Fatalf("access forms decoded wrong: %+v %+v %+v", a, b, cc)
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	c, err := Parse([]byte(withRoutes(`  - &base
    name: admin
    path_prefix: /admin/
    upstream: http://127.0.0.1:9001
    timeout: 5s
    access: {roles: [admin]}
  - <<: *base
    name: app
    path_prefix: /
`)), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	app := c.Routes[1]
	if app.Name != "app" || app.PathPrefix != "/" || app.Upstream != "http://127.0.0.1:9001" ||
		app.Timeout != 5*time.Second || !slices.Equal(app.Access.Roles, []string{"admin"}) {
		t.Fatalf("merged route = %+v", app)
	}
}

func TestParseAliasBombs(t *testing.T) {
	tests := []struct {
		name string
		leaf string // the node every level repeats
		use  string // the key that refers to the last level
	}{
		{name: "merge keys", leaf: "{}", use: "server: {<<: *a9}\n"},
		{name: "sequences", leaf: "[x, x, x, x, x, x, x, x, x, x]", use: "oidc: {scopes: *a9}\nroutes: *a9\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			fmt.Fprintf(&b, "a0: &a0 %s\n", tt.leaf)
			for i := 1; i < 10; i++ {
				refs := strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10)
				if tt.name == "merge keys" {
					fmt.Fprintf(&b, "a%d: &a%d {<<: [%s]}\n", i, i, strings.TrimSuffix(refs, ", "))
				} else {
					fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(refs, ", "))
				}
			}
			b.WriteString(tt.use)
			done := make(chan error, 1)
			go func() {
				_, err := Parse([]byte(b.String()), nil, "")
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("Parse accepted an alias bomb")
				}
				if tt.name == "merge keys" {
					assertMsg(t, err, "too complex")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Parse did not bound the work of an alias bomb")
			}
		})
	}
}
