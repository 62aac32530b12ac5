package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		check func(c *Config) bool
	}{
		{name: "string", env: []string{"AUTHGATE_OIDC_CLIENT_SECRET=from-env"},
			check: func(c *Config) bool { return c.OIDC.ClientSecret == "from-env" }},
		{name: "key with underscores", env: []string{"AUTHGATE_SESSION_REDIS_URL=redis://redis.internal:6379/3"},
			check: func(c *Config) bool { return c.Session.RedisURL == "redis://redis.internal:6379/3" }},
		{name: "nested mapping", env: []string{"AUTHGATE_OIDC_CLAIMS_ROLES=realm_access.roles"},
			check: func(c *Config) bool { return c.OIDC.Claims.Roles == "realm_access.roles" }},
		{name: "string taken literally", env: []string{"AUTHGATE_OIDC_CLIENT_ID=yes # not a comment"},
			check: func(c *Config) bool { return c.OIDC.ClientID == "yes # not a comment" }},
		{name: "bool", env: []string{"AUTHGATE_DATABASE_AUTO_MIGRATE=false"},
			check: func(c *Config) bool { return !c.Database.AutoMigrate }},
		{name: "duration", env: []string{"AUTHGATE_SESSION_IDLE_TIMEOUT=1h", "AUTHGATE_SESSION_ABSOLUTE_TIMEOUT=24h"},
			check: func(c *Config) bool {
				return c.Session.IdleTimeout == time.Hour && c.Session.AbsoluteTimeout == 24*time.Hour
			}},
		{name: "integer", env: []string{"AUTHGATE_SERVER_LOGIN_RATE_LIMIT= 0 "},
			check: func(c *Config) bool { return c.Server.LoginRateLimit == 0 }},
		{name: "list comma separated", env: []string{"AUTHGATE_OIDC_SCOPES=openid, email ,"},
			check: func(c *Config) bool { return slices.Equal(c.OIDC.Scopes, []string{"openid", "email"}) }},
		{name: "list flow syntax", env: []string{"AUTHGATE_SERVER_TRUSTED_PROXIES=[10.0.0.0/8, \"192.168.0.0/16\"]"},
			check: func(c *Config) bool {
				return slices.Equal(c.Server.TrustedProxies, []string{"10.0.0.0/8", "192.168.0.0/16"})
			}},
		{name: "secrets list", env: []string{"AUTHGATE_SESSION_SECRETS=" + testSecretB + "," + testSecretA},
			check: func(c *Config) bool { return slices.Equal(c.Session.Secrets, []string{testSecretB, testSecretA}) }},
		{name: "empty list", env: []string{"AUTHGATE_CORS_ALLOWED_ORIGINS="},
			check: func(c *Config) bool { return c.CORS.AllowedOrigins != nil && len(c.CORS.AllowedOrigins) == 0 }},
		{name: "map", env: []string{"AUTHGATE_OIDC_AUTH_PARAMS={audience: \"https://api\", prompt: login}"},
			check: func(c *Config) bool {
				return c.OIDC.AuthParams["audience"] == "https://api" && c.OIDC.AuthParams["prompt"] == "login"
			}},
		{name: "empty value disables admin", env: []string{"AUTHGATE_ADMIN_LISTEN=", "AUTHGATE_ADMIN_TOKEN="},
			check: func(c *Config) bool { return c.Admin.Listen == "" && c.Admin.Token == "" }},
		{name: "routes as JSON", env: []string{`AUTHGATE_ROUTES=[{"name":"api","path_prefix":"/api/","upstream":"http://127.0.0.1:7000","access":{"groups":["dev"]},"timeout":"5s"}]`},
			check: func(c *Config) bool {
				return len(c.Routes) == 1 && c.Routes[0].Name == "api" && c.Routes[0].Timeout == 5*time.Second &&
					slices.Equal(c.Routes[0].Access.Groups, []string{"dev"}) && c.Routes[0].CSRF == CSRFOrigin
			}},
		{name: "routes as YAML", env: []string{"AUTHGATE_ROUTES=- {name: app, path_prefix: /, upstream: 'http://127.0.0.1:7000', access: public}\n"},
			check: func(c *Config) bool { return len(c.Routes) == 1 && c.Routes[0].Access.Public }},
		{name: "later entry wins", env: []string{"AUTHGATE_OIDC_CLIENT_ID=a", "AUTHGATE_OIDC_CLIENT_ID=b"},
			check: func(c *Config) bool { return c.OIDC.ClientID == "b" }},
		{name: "unrelated variables ignored", env: []string{"PATH=/bin", "AUTHGATE_NOT_A_KEY=1", "NOEQUALS"},
			check: func(c *Config) bool { return c.OIDC.ClientID == "authgate" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(validYAML), tt.env, "")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(c) {
				t.Fatalf("override not applied: %+v", c)
			}
		})
	}
}

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		wantKeys []string
		wantMsg  string
	}{
		{name: "bad bool", env: []string{"AUTHGATE_SESSION_SECURE=maybe"}, wantKeys: []string{"session.secure"},
			wantMsg: "session.secure: AUTHGATE_SESSION_SECURE: expected true or false"},
		{name: "bad duration", env: []string{"AUTHGATE_SESSION_IDLE_TIMEOUT=soon"}, wantKeys: []string{"session.idle_timeout"},
			wantMsg: "AUTHGATE_SESSION_IDLE_TIMEOUT"},
		{name: "bad integer", env: []string{"AUTHGATE_SERVER_LOGIN_RATE_LIMIT=lots"}, wantKeys: []string{"server.login_rate_limit"},
			wantMsg: "server.login_rate_limit: AUTHGATE_SERVER_LOGIN_RATE_LIMIT: expected an integer"},
		{name: "negative integer validated", env: []string{"AUTHGATE_SERVER_LOGIN_RATE_LIMIT=-5"}, wantKeys: []string{"server.login_rate_limit"}},
		{name: "bad flow list", env: []string{"AUTHGATE_OIDC_SCOPES=[openid"}, wantKeys: []string{"oidc.scopes"},
			wantMsg: "AUTHGATE_OIDC_SCOPES: invalid YAML"},
		{name: "list of mappings", env: []string{"AUTHGATE_OIDC_SCOPES=[{a: b}]"}, wantKeys: []string{"oidc.scopes"},
			wantMsg: "AUTHGATE_OIDC_SCOPES: expected a list of strings"},
		{name: "bad map", env: []string{"AUTHGATE_OIDC_AUTH_PARAMS=audience"}, wantKeys: []string{"oidc.auth_params"},
			wantMsg: "AUTHGATE_OIDC_AUTH_PARAMS"},
		{name: "unknown key in routes", env: []string{`AUTHGATE_ROUTES=[{"name":"x","path_prefix":"/","upstream":"http://h","bogus":1}]`},
			wantKeys: []string{"routes[0].bogus"}, wantMsg: "routes[0].bogus: AUTHGATE_ROUTES: unknown key"},
		{name: "invalid route from env", env: []string{`AUTHGATE_ROUTES=[{"name":"x","path_prefix":"/.auth/"}]`},
			wantKeys: []string{"routes[0].path_prefix", "routes[0].upstream"}},
		{name: "env value validated", env: []string{"AUTHGATE_SESSION_SAME_SITE=none", "AUTHGATE_SESSION_SECURE=false"},
			wantKeys: []string{"session.same_site", "session.secure", "session.cookie_name"}},
		{name: "secret not echoed", env: []string{"AUTHGATE_SESSION_SECRETS=[hunter2"}, wantKeys: []string{"session.secrets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(validYAML), tt.env, "")
			assertKeys(t, err, tt.wantKeys)
			if tt.wantMsg != "" {
				assertMsg(t, err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error repeats the value: %v", err)
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	if got := EnvName("oidc.client_secret"); got != "AUTHGATE_OIDC_CLIENT_SECRET" {
		t.Errorf("EnvName = %q", got)
	}
	seen := map[string]string{}
	for _, k := range Keys() {
		if k.Env == "" {
			continue
		}
		if other, dup := seen[k.Env]; dup {
			t.Errorf("%s and %s share %s", k.Path, other, k.Env)
		}
		seen[k.Env] = k.Path
	}
	for _, want := range []string{"AUTHGATE_OIDC_CLIENT_SECRET", "AUTHGATE_OIDC_CLIENT_SECRET_FILE", "AUTHGATE_SESSION_REDIS_URL",
		"AUTHGATE_OIDC_CLAIMS_GROUPS", "AUTHGATE_ROUTES", "AUTHGATE_ADMIN_TOKEN_FILE", "AUTHGATE_SERVER_SHUTDOWN_GRACE"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no key overridden by %s", want)
		}
	}
	if _, ok := seen["AUTHGATE_SESSION"]; ok {
		t.Error("a mapping has its own variable")
	}
}

func TestUnusedEnv(t *testing.T) {
	got := UnusedEnv([]string{"AUTHGATE_OIDC_CLIENTSECRET=x", "AUTHGATE_CONFIG=/etc/a.yaml", "AUTHGATE_ROUTES=[]",
		"AUTHGATE_SESSION=1", "HOME=/root", "AUTHGATE_SESSION_SECURE=true"})
	if want := []string{"AUTHGATE_OIDC_CLIENTSECRET", "AUTHGATE_SESSION"}; !slices.Equal(got, want) {
		t.Fatalf("UnusedEnv = %q, want %q", got, want)
	}
}
