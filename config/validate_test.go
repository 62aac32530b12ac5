package config

import (
	"strings"
	"testing"
	"time"
)

// localDev makes the config a plain-http loopback one, where secure: false is allowed.
func localDev(c *Config) {
	c.Server.PublicURL = "http://127.0.0.1:8080"
	c.Session.CookieName = "authgate"
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(c *Config)
		wantKeys []string // exact set of keys with a problem; nil = valid
		wantMsg  string   // optional: text one problem must contain
	}{
		{name: "valid as is", mutate: func(c *Config) {}},

		// server
		{name: "public_url missing", mutate: func(c *Config) { c.Server.PublicURL = "" }, wantKeys: []string{"server.public_url"}},
		{name: "public_url http non-loopback", mutate: func(c *Config) { c.Server.PublicURL = "http://app.example.com" }, wantKeys: []string{"server.public_url"}, wantMsg: "https"},
		{name: "public_url with path", mutate: func(c *Config) { c.Server.PublicURL = "https://app.example.com/app" }, wantKeys: []string{"server.public_url"}},
		{name: "public_url with query", mutate: func(c *Config) { c.Server.PublicURL = "https://app.example.com/?x=1" }, wantKeys: []string{"server.public_url"}},
		{name: "public_url with fragment", mutate: func(c *Config) { c.Server.PublicURL = "https://app.example.com#x" }, wantKeys: []string{"server.public_url"}},
		{name: "public_url relative", mutate: func(c *Config) { c.Server.PublicURL = "app.example.com" }, wantKeys: []string{"server.public_url"}},
		{name: "public_url credentials", mutate: func(c *Config) { c.Server.PublicURL = "https://u:p@app.example.com" }, wantKeys: []string{"server.public_url"}},
		{name: "public_url bad port", mutate: func(c *Config) { c.Server.PublicURL = "https://app.example.com:99999" }, wantKeys: []string{"server.public_url"}},
		{name: "public_url trailing slash", mutate: func(c *Config) { c.Server.PublicURL = "https://app.example.com/" }},
		{name: "public_url http localhost", mutate: func(c *Config) { c.Server.PublicURL = "http://localhost:8080" }},
		{name: "public_url http 127.0.0.2", mutate: func(c *Config) { c.Server.PublicURL = "http://127.0.0.2:8080" }},
		{name: "public_url http ::1", mutate: func(c *Config) { c.Server.PublicURL = "http://[::1]:8080" }},
		{name: "public_url http 10.0.0.1", mutate: func(c *Config) { c.Server.PublicURL = "http://10.0.0.1" }, wantKeys: []string{"server.public_url"}},
		{name: "listen without port", mutate: func(c *Config) { c.Server.Listen = "8080" }, wantKeys: []string{"server.listen"}},
		{name: "listen empty", mutate: func(c *Config) { c.Server.Listen = "" }, wantKeys: []string{"server.listen"}},
		{name: "trusted proxies ok", mutate: func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.1", "::1", "fd00::/8"} }},
		{name: "trusted proxy bogus", mutate: func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"} }, wantKeys: []string{"server.trusted_proxies[1]"}},
		{name: "tls cert without key", mutate: func(c *Config) { c.Server.TLSCertFile = "cert.pem" }, wantKeys: []string{"server.tls_key_file"}},
		{name: "tls key without cert", mutate: func(c *Config) { c.Server.TLSKeyFile = "key.pem" }, wantKeys: []string{"server.tls_cert_file"}},
		{name: "negative shutdown grace", mutate: func(c *Config) { c.Server.ShutdownGrace = -time.Second }, wantKeys: []string{"server.shutdown_grace"}},
		{name: "bad log level", mutate: func(c *Config) { c.Server.LogLevel = "verbose" }, wantKeys: []string{"server.log_level"}},
		{name: "login rate limit off", mutate: func(c *Config) { c.Server.LoginRateLimit = 0 }},
		{name: "login rate limit negative", mutate: func(c *Config) { c.Server.LoginRateLimit = -1 }, wantKeys: []string{"server.login_rate_limit"}},

		// oidc
		{name: "issuer missing", mutate: func(c *Config) { c.OIDC.Issuer = "" }, wantKeys: []string{"oidc.issuer"}},
		{name: "issuer http remote", mutate: func(c *Config) { c.OIDC.Issuer = "http://idp.example.com" }, wantKeys: []string{"oidc.issuer"}},
		{name: "issuer http loopback", mutate: func(c *Config) { c.OIDC.Issuer = "http://127.0.0.1:5556/dex" }},
		{name: "issuer with query", mutate: func(c *Config) { c.OIDC.Issuer = "https://idp.example.com/?tenant=1" }, wantKeys: []string{"oidc.issuer"}},
		{name: "client_id missing", mutate: func(c *Config) { c.OIDC.ClientID = "" }, wantKeys: []string{"oidc.client_id"}},
		{name: "client_secret missing", mutate: func(c *Config) { c.OIDC.ClientSecret = "" }, wantKeys: []string{"oidc.client_secret"}},
		{name: "scopes without openid", mutate: func(c *Config) { c.OIDC.Scopes = []string{"profile"} }, wantKeys: []string{"oidc.scopes"}},
		{name: "scopes empty", mutate: func(c *Config) { c.OIDC.Scopes = []string{} }, wantKeys: []string{"oidc.scopes"}},
		{name: "scope with space", mutate: func(c *Config) { c.OIDC.Scopes = []string{"openid", "a b"} }, wantKeys: []string{"oidc.scopes[1]"}},
		{name: "auth_params audience", mutate: func(c *Config) { c.OIDC.AuthParams = map[string]string{"audience": "https://api"} }},
		{name: "auth_params reserved", mutate: func(c *Config) {
			c.OIDC.AuthParams = map[string]string{"state": "x", "redirect_uri": "https://evil", "prompt": "login"}
		}, wantKeys: []string{"oidc.auth_params.redirect_uri", "oidc.auth_params.state"}},
		{name: "roles claim empty", mutate: func(c *Config) { c.OIDC.Claims.Roles = "" }, wantKeys: []string{"oidc.claims.roles"}},
		{name: "groups claim empty", mutate: func(c *Config) { c.OIDC.Claims.Groups = "" }, wantKeys: []string{"oidc.claims.groups"}},
		{name: "post logout absolute", mutate: func(c *Config) { c.OIDC.PostLogoutRedirect = "https://www.example.com/bye" }},
		{name: "post logout path", mutate: func(c *Config) { c.OIDC.PostLogoutRedirect = "/signed-out?x=1" }},
		{name: "post logout protocol-relative", mutate: func(c *Config) { c.OIDC.PostLogoutRedirect = "//evil.example" }, wantKeys: []string{"oidc.post_logout_redirect"}},
		{name: "post logout backslash", mutate: func(c *Config) { c.OIDC.PostLogoutRedirect = `/\evil.example` }, wantKeys: []string{"oidc.post_logout_redirect"}},
		{name: "post logout http remote", mutate: func(c *Config) { c.OIDC.PostLogoutRedirect = "http://evil.example/" }, wantKeys: []string{"oidc.post_logout_redirect"}},
		{name: "post logout javascript", mutate: func(c *Config) { c.OIDC.PostLogoutRedirect = "javascript:alert(1)" }, wantKeys: []string{"oidc.post_logout_redirect"}},
		{name: "post logout empty", mutate: func(c *Config) { c.OIDC.PostLogoutRedirect = "" }, wantKeys: []string{"oidc.post_logout_redirect"}},

		// session
		{name: "store unknown", mutate: func(c *Config) { c.Session.Store = "memcached" }, wantKeys: []string{"session.store"}},
		{name: "redis url http", mutate: func(c *Config) { c.Session.RedisURL = "http://127.0.0.1:6379" }, wantKeys: []string{"session.redis_url"}},
		{name: "redis url bad db", mutate: func(c *Config) { c.Session.RedisURL = "redis://127.0.0.1:6379/x" }, wantKeys: []string{"session.redis_url"}},
		{name: "redis url unknown option", mutate: func(c *Config) { c.Session.RedisURL = "redis://127.0.0.1:6379/0?bogus=1" }, wantKeys: []string{"session.redis_url"}},
		{name: "redis url empty", mutate: func(c *Config) { c.Session.RedisURL = "" }, wantKeys: []string{"session.redis_url"}},
		{name: "rediss with password", mutate: func(c *Config) { c.Session.RedisURL = "rediss://:pw@redis.internal:6380/2" }},
		{name: "redis unix socket", mutate: func(c *Config) { c.Session.RedisURL = "unix:///run/redis.sock?db=1" }},
		{name: "redis sentinel", mutate: func(c *Config) {
			c.Session.RedisURL = "redis://s1:26379?master_name=mymaster&addr=s2:26379&addr=s3:26379"
		}},
		{name: "redis sentinel empty master", mutate: func(c *Config) { c.Session.RedisURL = "redis://s1:26379?master_name=" }, wantKeys: []string{"session.redis_url"}},
		{name: "redis cluster", mutate: func(c *Config) { c.Session.RedisURL = "redis://n1:7000?addr=n2:7000&addr=n3:7000" }},
		{name: "redis cluster read from replicas", mutate: func(c *Config) { c.Session.RedisURL = "redis://n1:7000?addr=n2:7000&read_only=true" }, wantKeys: []string{"session.redis_url"}, wantMsg: "masters only"},
		{name: "redis cluster route by latency", mutate: func(c *Config) { c.Session.RedisURL = "redis://n1:7000?addr=n2:7000&route_by_latency=true" }, wantKeys: []string{"session.redis_url"}, wantMsg: "masters only"},
		{name: "redis cluster route randomly", mutate: func(c *Config) { c.Session.RedisURL = "redis://n1:7000?addr=n2:7000&route_randomly=true" }, wantKeys: []string{"session.redis_url"}, wantMsg: "masters only"},
		{name: "memory store ignores redis url", mutate: func(c *Config) { c.Session.Store = StoreMemory; c.Session.RedisURL = "nonsense" }},
		{name: "cookie name with space", mutate: func(c *Config) { c.Session.CookieName = "auth gate" }, wantKeys: []string{"session.cookie_name"}},
		{name: "cookie name empty", mutate: func(c *Config) { c.Session.CookieName = "" }, wantKeys: []string{"session.cookie_name"}},
		{name: "host cookie with domain", mutate: func(c *Config) { c.Session.CookieDomain = "example.com" }, wantKeys: []string{"session.cookie_domain"}, wantMsg: `"__Host-"`},
		{name: "host cookie lower case prefix with domain", mutate: func(c *Config) {
			c.Session.CookieName = "__host-sid"
			c.Session.CookieDomain = "example.com"
		}, wantKeys: []string{"session.cookie_domain"}},
		{name: "host cookie without secure", mutate: func(c *Config) {
			c.Server.PublicURL = "http://127.0.0.1:8080"
			c.Session.Secure = false
		}, wantKeys: []string{"session.cookie_name"}, wantMsg: `session.cookie_name: the "__Host-" prefix requires session.secure: true`},
		{name: "secure prefix without secure", mutate: func(c *Config) {
			localDev(c)
			c.Session.CookieName = "__Secure-sid"
			c.Session.Secure = false
		}, wantKeys: []string{"session.cookie_name"}},
		{name: "parent cookie domain", mutate: func(c *Config) { c.Session.CookieName = "sid"; c.Session.CookieDomain = ".example.com" }},
		{name: "foreign cookie domain", mutate: func(c *Config) { c.Session.CookieName = "sid"; c.Session.CookieDomain = "example.org" }, wantKeys: []string{"session.cookie_domain"}},
		{name: "look-alike cookie domain", mutate: func(c *Config) { c.Session.CookieName = "sid"; c.Session.CookieDomain = "ple.com" }, wantKeys: []string{"session.cookie_domain"}},
		{name: "cookie domain with scheme", mutate: func(c *Config) { c.Session.CookieName = "sid"; c.Session.CookieDomain = "https://example.com" }, wantKeys: []string{"session.cookie_domain"}},
		{name: "same_site none secure", mutate: func(c *Config) { c.Session.SameSite = SameSiteNone }},
		{name: "same_site none not secure", mutate: func(c *Config) {
			localDev(c)
			c.Session.SameSite = SameSiteNone
			c.Session.Secure = false
		}, wantKeys: []string{"session.same_site"}, wantMsg: `session.same_site: "none" requires session.secure: true`},
		{name: "same_site capitalised", mutate: func(c *Config) { c.Session.SameSite = "Lax" }, wantKeys: []string{"session.same_site"}},
		{name: "insecure cookie on https", mutate: func(c *Config) { c.Session.CookieName = "sid"; c.Session.Secure = false }, wantKeys: []string{"session.secure"}},
		{name: "insecure cookie on http loopback", mutate: func(c *Config) { localDev(c); c.Session.Secure = false }},
		{name: "no secrets", mutate: func(c *Config) { c.Session.Secrets = nil }, wantKeys: []string{"session.secrets"}},
		{name: "short secret", mutate: func(c *Config) { c.Session.Secrets = []string{testSecretA, "c2hvcnQ="} }, wantKeys: []string{"session.secrets[1]"}, wantMsg: "decodes to 5 bytes"},
		{name: "secret not base64", mutate: func(c *Config) { c.Session.Secrets = []string{"not base64 at all!"} }, wantKeys: []string{"session.secrets[0]"}},
		{name: "duplicate secret", mutate: func(c *Config) { c.Session.Secrets = []string{testSecretA, testSecretB, testSecretA} }, wantKeys: []string{"session.secrets[2]"}},
		{name: "duplicate secret other alphabet", mutate: func(c *Config) {
			c.Session.Secrets = []string{testSecretA, strings.TrimRight(testSecretA, "=")}
		}, wantKeys: []string{"session.secrets[1]"}},
		{name: "url alphabet unpadded secret", mutate: func(c *Config) { c.Session.Secrets = []string{"-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_"} }},
		{name: "idle timeout zero", mutate: func(c *Config) { c.Session.IdleTimeout = 0 }, wantKeys: []string{"session.idle_timeout"}},
		{name: "absolute below idle", mutate: func(c *Config) { c.Session.AbsoluteTimeout = 10 * time.Minute }, wantKeys: []string{"session.absolute_timeout"}},

		// database
		{name: "database missing", mutate: func(c *Config) { c.Database.URL = "" }, wantKeys: []string{"database.url"}},
		{name: "database mysql", mutate: func(c *Config) { c.Database.URL = "mysql://db/authgate" }, wantKeys: []string{"database.url"}},
		{name: "database sqlite no path", mutate: func(c *Config) { c.Database.URL = "sqlite:" }, wantKeys: []string{"database.url"}},
		{name: "database sqlite", mutate: func(c *Config) { c.Database.URL = "sqlite:/var/lib/authgate/users.db" }},
		{name: "database postgresql", mutate: func(c *Config) { c.Database.URL = "postgresql://u:p@db:5432/authgate" }},
		{name: "audit retention off", mutate: func(c *Config) { c.Database.AuditRetention = 0 }},
		{name: "audit retention too short", mutate: func(c *Config) { c.Database.AuditRetention = time.Minute }, wantKeys: []string{"database.audit_retention"}},
		{name: "audit retention negative", mutate: func(c *Config) { c.Database.AuditRetention = -time.Hour }, wantKeys: []string{"database.audit_retention"}},

		// cors
		{name: "cors exact origins", mutate: func(c *Config) {
			c.CORS.AllowedOrigins = []string{"https://spa.example.net", "http://localhost:5173", "https://[::1]:8443"}
		}},
		{name: "cors wildcard", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"*"} }, wantKeys: []string{"cors.allowed_origins[0]"}},
		{name: "cors subdomain wildcard", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"https://*.example.net"} }, wantKeys: []string{"cors.allowed_origins[0]"}},
		{name: "cors null", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"null"} }, wantKeys: []string{"cors.allowed_origins[0]"}},
		{name: "cors with path", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"https://spa.example.net/"} }, wantKeys: []string{"cors.allowed_origins[0]"}},
		{name: "cors upper case", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"https://SPA.example.net"} }, wantKeys: []string{"cors.allowed_origins[0]"}, wantMsg: `"https://spa.example.net"`},
		{name: "cors default port", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"https://spa.example.net:443"} }, wantKeys: []string{"cors.allowed_origins[0]"}},
		{name: "cors duplicate", mutate: func(c *Config) {
			c.CORS.AllowedOrigins = []string{"https://a.example", "https://a.example"}
		}, wantKeys: []string{"cors.allowed_origins[1]"}},

		// admin
		{name: "admin without token", mutate: func(c *Config) { c.Admin.Token = "" }, wantKeys: []string{"admin.token"}},
		{name: "admin short token", mutate: func(c *Config) { c.Admin.Token = "short" }, wantKeys: []string{"admin.token"}},
		{name: "admin disabled needs no token", mutate: func(c *Config) { c.Admin.Listen = ""; c.Admin.Token = "" }},
		{name: "admin on the main port", mutate: func(c *Config) { c.Admin.Listen = "127.0.0.1:8080" }, wantKeys: []string{"admin.listen"}},
		{name: "admin same explicit address", mutate: func(c *Config) {
			c.Server.Listen = "127.0.0.1:9000"
			c.Admin.Listen = "127.0.0.1:9000"
		}, wantKeys: []string{"admin.listen"}},
		{name: "admin other host same port", mutate: func(c *Config) {
			c.Server.Listen = "10.0.0.1:9000"
			c.Admin.Listen = "127.0.0.1:9000"
		}},
		{name: "admin listen bad", mutate: func(c *Config) { c.Admin.Listen = "localhost" }, wantKeys: []string{"admin.listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.mutate(c)
			err := c.Validate()
			assertKeys(t, err, tt.wantKeys)
			if tt.wantMsg != "" {
				assertMsg(t, err, tt.wantMsg)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := &Config{}
	keys := errorKeys(c.Validate())
	for _, want := range []string{"server.listen", "server.public_url", "oidc.issuer", "oidc.client_id",
		"oidc.client_secret", "session.store", "session.secrets", "database.url", "routes"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("zero Config: no problem reported for %s (got %q)", want, keys)
		}
	}
}

func TestErrorsNeverEchoSecrets(t *testing.T) {
	c := validConfig(t)
	c.Session.RedisURL = "redis://:hunter2-redis@127.0.0.1:6379/x?bogus=1"
	c.Database.URL = "postgres://u:hunter2-db@db:5432/%zz"
	c.Session.Secrets = []string{"aHVudGVyMi1zZWNyZXQ=", "hunter2 secret!"}
	c.Admin.Token = "hunter2"
	err := c.Validate()
	assertKeys(t, err, []string{"session.redis_url", "database.url", "session.secrets[0]", "session.secrets[1]", "admin.token"})
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "aHVudGVy") {
		t.Fatalf("error repeats a secret:\n%v", err)
	}
}
