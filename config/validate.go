package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Validate checks the whole configuration and returns every problem, joined with errors.Join;
// each is a *FieldError naming its key. It expects *_file secrets to be read already (Load and
// Parse do it). It does not touch the network or the file system: whether the IdP, Redis, the
// database, the upstreams and the TLS files are reachable is checked at start-up.
func (c *Config) Validate() error {
	return errors.Join(c.validate()...)
}

func (c *Config) validate() []error {
	var p problems
	c.validateServer(&p)
	c.validateOIDC(&p)
	c.validateSession(&p)
	c.validateDatabase(&p)
	c.validateRoutes(&p)
	c.validateCORS(&p)
	c.validateBearer(&p)
	c.validateAdmin(&p)
	return p.errs
}

// publicURL returns server.public_url parsed, when it is valid.
func (c *Config) publicURL() (*url.URL, bool) {
	u, msg := httpURL(c.Server.PublicURL)
	if msg != "" || (u.Path != "" && u.Path != "/") || strings.ContainsAny(c.Server.PublicURL, "?#") {
		return nil, false
	}
	return u, true
}

func (c *Config) validateServer(p *problems) {
	s := c.Server
	if s.Listen == "" {
		p.add("server.listen", `required, e.g. ":8080"`)
	} else if msg := checkListen(s.Listen); msg != "" {
		p.add("server.listen", "%s", msg)
	}
	c.validatePublicURL(p)
	for i, tp := range s.TrustedProxies {
		if _, ok := parsePrefix(tp); !ok {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", tp)
		}
	}
	switch {
	case s.TLSCertFile != "" && s.TLSKeyFile == "":
		p.add("server.tls_key_file", "required when server.tls_cert_file is set")
	case s.TLSCertFile == "" && s.TLSKeyFile != "":
		p.add("server.tls_cert_file", "required when server.tls_key_file is set")
	}
	if s.ShutdownGrace < 0 {
		p.add("server.shutdown_grace", "must not be negative")
	}
	if s.LoginRateLimit < 0 {
		p.add("server.login_rate_limit", "must not be negative (0 disables the limit)")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.LogLevel) {
		p.add("server.log_level", "must be debug, info, warn or error")
	}
}

func (c *Config) validatePublicURL(p *problems) {
	const key = "server.public_url"
	s := c.Server.PublicURL
	if s == "" {
		p.add(key, `required: the scheme://host[:port] browsers use, e.g. "https://app.example.com"`)
		return
	}
	u, msg := httpURL(s)
	switch {
	case msg != "":
		p.add(key, "%s", msg)
	case (u.Path != "" && u.Path != "/") || strings.ContainsAny(s, "?#"):
		p.add(key, "must be scheme://host[:port] without path, query or fragment")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		p.add(key, "must use https:// (http:// only on a loopback host: localhost, 127.0.0.0/8, ::1)")
	}
}

// reservedAuthParams are authorize parameters the gateway sets itself.
func reservedAuthParams() []string {
	return []string{"client_id", "code_challenge", "code_challenge_method", "nonce",
		"redirect_uri", "response_mode", "response_type", "scope", "state"}
}

func (c *Config) validateOIDC(p *problems) {
	o := c.OIDC
	if o.Issuer == "" {
		p.add("oidc.issuer", "required: the IdP's issuer URL (discovery at /.well-known/openid-configuration)")
	} else if u, msg := httpURL(o.Issuer); msg != "" {
		p.add("oidc.issuer", "%s", msg)
	} else if strings.ContainsAny(o.Issuer, "?#") {
		p.add("oidc.issuer", "must not have a query or fragment")
	} else if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		p.add("oidc.issuer", "must use https:// (http:// only on a loopback host)")
	}
	if o.ClientID == "" {
		p.add("oidc.client_id", "required")
	}
	if o.ClientSecret == "" {
		p.add("oidc.client_secret", "required (or oidc.client_secret_file): the gateway is a confidential client")
	}
	if !slices.Contains(o.Scopes, "openid") {
		p.add("oidc.scopes", `must include "openid"`)
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			p.add(fmt.Sprintf("oidc.scopes[%d]", i), "must be a single scope token")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.AuthParams)) {
		if slices.Contains(reservedAuthParams(), k) {
			p.add("oidc.auth_params."+k, "is set by the gateway itself and cannot be configured")
		}
	}
	if o.Claims.Roles == "" {
		p.add("oidc.claims.roles", "required: the claim holding the user's roles")
	}
	if o.Claims.Groups == "" {
		p.add("oidc.claims.groups", "required: the claim holding the user's groups")
	}
	c.validatePostLogout(p)
}

func (c *Config) validatePostLogout(p *problems) {
	const key = "oidc.post_logout_redirect"
	s := c.OIDC.PostLogoutRedirect
	if strings.HasPrefix(s, "/") {
		if !isLocalPath(s) {
			p.add(key, `must be a path on the public origin ("/", not "//..." or "/\\...") or an absolute URL`)
		}
		return
	}
	if s == "" {
		p.add(key, `required: a path on the public origin such as "/", or an absolute URL`)
		return
	}
	u, msg := httpURL(s)
	switch {
	case msg != "":
		p.add(key, "must be a path starting with \"/\" or an absolute URL: %s", msg)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		p.add(key, "must use https:// (http:// only on a loopback host)")
	}
}

func (c *Config) validateDatabase(p *problems) {
	u := c.Database.URL
	switch {
	case u == "":
		p.add("database.url", "required: postgres://... or sqlite:PATH")
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		if _, err := url.Parse(u); err != nil {
			p.add("database.url", "is not a valid URL")
		}
	case strings.HasPrefix(u, "sqlite:"):
		if strings.TrimPrefix(u, "sqlite:") == "" {
			p.add("database.url", "sqlite: needs a path, e.g. sqlite:/var/lib/authgate/users.db")
		}
	default:
		p.add("database.url", "must start with postgres://, postgresql:// or sqlite:")
	}
	if r := c.Database.AuditRetention; r != 0 && r < time.Hour {
		p.add("database.audit_retention", "must be 0 (keep forever) or at least 1h")
	}
}

func (c *Config) validateCORS(p *problems) {
	seen := map[string]int{}
	for i, o := range c.CORS.AllowedOrigins {
		key := fmt.Sprintf("cors.allowed_origins[%d]", i)
		if msg := checkOrigin(o); msg != "" {
			p.add(key, "%s", msg)
			continue
		}
		if j, dup := seen[o]; dup {
			p.add(key, "duplicates cors.allowed_origins[%d]", j)
		}
		seen[o] = i
	}
}

// checkOrigin accepts exactly what a browser sends in Origin: scheme://host[:port], lower case,
// no default port, no path.
func checkOrigin(o string) string {
	if o == "*" || o == "null" || strings.Contains(o, "*") {
		return fmt.Sprintf("%q is not allowed: list exact origins (wildcards and null are refused)", o)
	}
	u, msg := httpURL(o)
	if msg != "" {
		return msg
	}
	if u.Path != "" || strings.ContainsAny(o, "?#") {
		return "must be an origin (scheme://host[:port]) without path, query or fragment"
	}
	host := strings.ToLower(u.Host)
	if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	if canonical := u.Scheme + "://" + host; canonical != o {
		return fmt.Sprintf("must be written as browsers send it: %q", canonical)
	}
	return ""
}

func (c *Config) validateAdmin(p *problems) {
	a := c.Admin
	if a.Listen == "" {
		return
	}
	if msg := checkListen(a.Listen); msg != "" {
		p.add("admin.listen", "%s", msg)
	} else if sameListener(a.Listen, c.Server.Listen) {
		p.add("admin.listen", "must differ from server.listen (the ops listener needs its own port)")
	}
	switch {
	case a.Token == "":
		p.add("admin.token", `required when admin.listen is set (or admin.token_file; set admin.listen: "" to disable the ops listener)`)
	case len(a.Token) < 16:
		p.add("admin.token", "must be at least 16 characters")
	}
}

// checkRedisURL checks redis_url with the go-redis parser RedisMode picks.
func checkRedisURL(s Session) string {
	if s.RedisURL == "" {
		return "required when session.store is redis"
	}
	u, err := url.Parse(s.RedisURL)
	if err != nil {
		return "is not a valid URL"
	}
	switch s.RedisMode() {
	case RedisSentinel:
		if u.Query().Get("master_name") == "" {
			return "master_name must not be empty"
		}
		_, err = redis.ParseFailoverURL(s.RedisURL)
	case RedisCluster:
		var o *redis.ClusterOptions
		if o, err = redis.ParseClusterURL(s.RedisURL); err == nil && (o.ReadOnly || o.RouteByLatency || o.RouteRandomly) {
			// Replicas lag: a revoked session could be read back from one (session refuses it too).
			return "a Cluster must be read from masters only: remove read_only, route_by_latency and route_randomly"
		}
	default:
		_, err = redis.ParseURL(s.RedisURL)
	}
	if err != nil {
		return "invalid: " + strings.TrimPrefix(err.Error(), "redis: ")
	}
	return ""
}
