// Package config loads and validates authgate's configuration: one YAML file, overridden key by
// key by AUTHGATE_* environment variables, with secrets optionally read from *_file siblings.
//
// Only cmd/authgate imports this package. It calls Load (or Parse), and copies the values it
// needs into each package's own Options struct. Everything is checked before the gateway
// starts: Load returns every problem at once, each naming the key it is about.
//
// The key names, defaults and environment variables are listed in docs/configuration.md.
package config

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Accepted values of the enumerated keys.
const (
	StoreRedis  = "redis"  // session.store: sessions in Redis (shared by every instance)
	StoreMemory = "memory" // session.store: sessions in this process only (demo, tests)

	SameSiteLax    = "lax"
	SameSiteStrict = "strict"
	SameSiteNone   = "none"

	CSRFOrigin = "origin" // routes[].csrf: Origin / Sec-Fetch-Site check on writes
	CSRFHeader = "header" // routes[].csrf: also require the header X-CSRF: 1 on writes
)

// Config is the whole configuration. Build it with Load or Parse, which apply the defaults
// (see Default), the environment and the *_file secrets, then Validate it. A Config built by
// hand must be passed through Validate by the caller before use.
type Config struct {
	Server   Server   `yaml:"server"`
	OIDC     OIDC     `yaml:"oidc"`
	Session  Session  `yaml:"session"`
	Database Database `yaml:"database"`
	// Upstream is the sidecar shorthand: one app behind the gateway, i.e. one route "default" at
	// "/" with authenticated access. It cannot be combined with Routes; after Load, Routes holds
	// that route.
	Upstream string  `yaml:"upstream"`
	Routes   []Route `yaml:"routes"`
	CORS     CORS    `yaml:"cors"`
	Bearer   Bearer  `yaml:"bearer"`
	Admin    Admin   `yaml:"admin"`
}

// Server is the main listener.
type Server struct {
	Listen         string        `yaml:"listen"`          // host:port, default ":8080"
	PublicURL      string        `yaml:"public_url"`      // scheme://host[:port] the browser uses; required
	TrustedProxies []string      `yaml:"trusted_proxies"` // CIDRs or IPs whose X-Forwarded-* are believed
	TLSCertFile    string        `yaml:"tls_cert_file"`   // serve HTTPS directly; both files or neither
	TLSKeyFile     string        `yaml:"tls_key_file"`    //
	ShutdownGrace  time.Duration `yaml:"shutdown_grace"`  // time given to in-flight requests at shutdown, default 15s
	LogLevel       string        `yaml:"log_level"`       // debug | info | warn | error, default info
	// LoginRateLimit: requests per minute per client IP to /.auth/login and /.auth/callback
	// together (the client IP honours trusted_proxies). Default 60; 0 disables.
	LoginRateLimit int `yaml:"login_rate_limit"`
}

// OIDC is the identity provider the gateway logs users in with (a confidential client).
type OIDC struct {
	Issuer             string            `yaml:"issuer"`
	ClientID           string            `yaml:"client_id"`
	ClientSecret       string            `yaml:"client_secret" secret:"true"`
	ClientSecretFile   string            `yaml:"client_secret_file"` // after Load: the path ClientSecret was read from
	Scopes             []string          `yaml:"scopes"`
	AuthParams         map[string]string `yaml:"auth_params"` // extra authorize parameters, e.g. audience
	Claims             Claims            `yaml:"claims"`
	PostLogoutRedirect string            `yaml:"post_logout_redirect"` // path on the public origin, or absolute URL
}

// Claims names the ID token / userinfo claims roles and groups are read from: a claim name, a
// URL-shaped claim name ("https://example.com/roles") or a dotted path ("realm_access.roles").
type Claims struct {
	Roles  string `yaml:"roles"`
	Groups string `yaml:"groups"`
}

// Session is the session cookie and the store behind it.
type Session struct {
	Store           string        `yaml:"store"`                   // redis | memory
	RedisURL        string        `yaml:"redis_url" secret:"true"` // see RedisMode
	CookieName      string        `yaml:"cookie_name"`             // default "__Host-authgate"
	CookieDomain    string        `yaml:"cookie_domain"`           // empty: host-only cookie
	SameSite        string        `yaml:"same_site"`               // lax | strict | none
	Secure          bool          `yaml:"secure"`                  // default true
	Secrets         []string      `yaml:"secrets" secret:"true"`   // base64, >= 32 bytes each; first one signs
	SecretsFile     string        `yaml:"secrets_file"`            // one secret a line; after Load: the path read
	IdleTimeout     time.Duration `yaml:"idle_timeout"`            // default 30m
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`        // default 12h
}

// Database is the user store.
type Database struct {
	URL            string        `yaml:"url" secret:"true"` // postgres://, postgresql:// or sqlite:PATH
	AutoMigrate    bool          `yaml:"auto_migrate"`      // default true
	AuditRetention time.Duration `yaml:"audit_retention"`   // default 2160h (90 days); 0 keeps audit events forever
}

// Route is one entry of the route table. The first route that matches a request wins; putting
// longer prefixes first is the author's job (Validate refuses a route that can never match).
type Route struct {
	Name            string        `yaml:"name"`        // [a-z0-9_-]+, unique; the aud of identity JWTs
	PathPrefix      string        `yaml:"path_prefix"` // starts with "/"; matched on a segment boundary
	Host            string        `yaml:"host"`        // optional exact Host match
	Upstream        string        `yaml:"upstream"`    // absolute http(s) URL
	Access          Access        `yaml:"access"`      // default: authenticated
	StripPrefix     bool          `yaml:"strip_prefix"`
	PassAccessToken bool          `yaml:"pass_access_token"`
	IdentityJWT     bool          `yaml:"identity_jwt"`
	Timeout         time.Duration `yaml:"timeout"` // default 30s
	Methods         []string      `yaml:"methods"` // empty: all methods
	CSRF            string        `yaml:"csrf"`    // origin | header, default origin
}

// CORS lists the other origins allowed to call the gateway with credentials.
type CORS struct {
	AllowedOrigins []string `yaml:"allowed_origins"` // exact origins: scheme://host[:port]
}

// Bearer lets API clients call with "Authorization: Bearer <JWT>" issued by oidc.issuer (or a
// trusted issuer) instead of the session cookie. The gateway verifies the token against the
// issuer's JWKS; the caller is not provisioned and gets no session (docs/api-clients.md).
type Bearer struct {
	Enabled        bool     `yaml:"enabled"`         // default false
	Audiences      []string `yaml:"audiences"`       // accepted aud values; empty: oidc.client_id (see BearerAudiences)
	TrustedIssuers []string `yaml:"trusted_issuers"` // issuers accepted besides oidc.issuer, exact strings
}

// Admin is the ops listener (health, readiness, metrics and the session/user API).
type Admin struct {
	Listen    string `yaml:"listen"` // default 127.0.0.1:9091; empty disables the listener
	Token     string `yaml:"token" secret:"true"`
	TokenFile string `yaml:"token_file"` // after Load: the path Token was read from
}

// Default returns a Config holding every default and nothing else. It does not validate:
// public_url, the OIDC client, the secrets, the database URL, the routes and the admin token
// still have to be set.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:         ":8080",
			ShutdownGrace:  15 * time.Second,
			LogLevel:       "info",
			LoginRateLimit: 60,
		},
		OIDC: OIDC{
			Scopes:             []string{"openid", "profile", "email", "offline_access"},
			Claims:             Claims{Roles: "roles", Groups: "groups"},
			PostLogoutRedirect: "/",
		},
		Session: Session{
			Store:           StoreRedis,
			RedisURL:        "redis://127.0.0.1:6379/0",
			CookieName:      "__Host-authgate",
			SameSite:        SameSiteLax,
			Secure:          true,
			IdleTimeout:     30 * time.Minute,
			AbsoluteTimeout: 12 * time.Hour,
		},
		Database: Database{AutoMigrate: true, AuditRetention: 90 * 24 * time.Hour},
		Admin:    Admin{Listen: "127.0.0.1:9091"},
	}
}

// DefaultRoute returns a route holding the per-route defaults (authenticated access, 30s
// timeout, csrf origin). The caller sets Name, PathPrefix and Upstream.
func DefaultRoute() Route {
	return Route{
		Access:  Access{Authenticated: true},
		Timeout: 30 * time.Second,
		CSRF:    CSRFOrigin,
	}
}

// setDefaults is called by the decoder on every route it creates.
func (r *Route) setDefaults() { *r = DefaultRoute() }

// BearerAudiences returns bearer.audiences, or oidc.client_id when none are listed.
func (c *Config) BearerAudiences() []string {
	if len(c.Bearer.Audiences) > 0 {
		return c.Bearer.Audiences
	}
	return []string{c.OIDC.ClientID}
}

// sidecarRoute is the route the top-level upstream stands for.
func (c *Config) sidecarRoute() Route {
	r := DefaultRoute()
	r.Name, r.PathPrefix, r.Upstream = "default", "/", c.Upstream
	return r
}

// expandUpstream turns the sidecar shorthand into its route (after validation).
func (c *Config) expandUpstream() {
	if c.Upstream != "" && len(c.Routes) == 0 {
		c.Routes = []Route{c.sidecarRoute()}
	}
}

// PublicOrigin returns public_url without its trailing slash ("https://app.example.com"), ready
// to have "/.auth/callback" appended. Call it on a validated Config.
func (s Server) PublicOrigin() string {
	u, err := url.Parse(s.PublicURL)
	if err != nil {
		return strings.TrimSuffix(s.PublicURL, "/")
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// TrustedPrefixes returns trusted_proxies as prefixes (a bare IP becomes a /32 or /128).
// Entries that do not parse are skipped: call it on a validated Config.
func (s Server) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.TrustedProxies))
	for _, p := range s.TrustedProxies {
		if pfx, ok := parsePrefix(p); ok {
			out = append(out, pfx)
		}
	}
	return out
}

// SlogLevel returns log_level as a slog.Level (info for anything unknown).
func (s Server) SlogLevel() slog.Level {
	switch s.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// SameSiteMode returns same_site as an http.SameSite (Lax for anything unknown).
func (s Session) SameSiteMode() http.SameSite {
	switch s.SameSite {
	case SameSiteStrict:
		return http.SameSiteStrictMode
	case SameSiteNone:
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

// Redis deployment modes returned by RedisMode.
const (
	RedisSingle   = "single"   // redis://, rediss:// or unix://: go-redis ParseURL
	RedisSentinel = "sentinel" // redis(s):// with ?master_name=: go-redis ParseFailoverURL
	RedisCluster  = "cluster"  // redis(s):// with one or more ?addr=: go-redis ParseClusterURL
)

// RedisMode tells which go-redis parser and client redis_url is meant for: a URL with a
// master_name query parameter is Sentinel, one with addr parameters (the other nodes) is
// Cluster, anything else a single node. Validate checks the URL with that same parser.
func (s Session) RedisMode() string {
	u, err := url.Parse(s.RedisURL)
	if err != nil {
		return RedisSingle
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		return RedisSentinel
	case q.Has("addr"):
		return RedisCluster
	}
	return RedisSingle
}
