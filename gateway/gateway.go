// Package gateway is authgate's HTTP front: the OIDC login endpoints under /.auth/, the
// session check on every request, the access policy of each route, the cross-site defences,
// and the hand-off to the upstream proxy with identity headers.
//
// A Gateway is built once from Options by cmd/authgate and served as an http.Handler. It owns
// no storage of its own: sessions, login flows and users live behind the small interfaces
// below, and proxying is done by package upstream.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
	"github.com/authgate/authgate/users"
)

// authPrefix is the reserved path prefix of the gateway's own endpoints.
const authPrefix = "/.auth/"

// Sessions is the session store the gateway needs: gorilla's Store for the session itself
// (New+Save at login, Get and Save with MaxAge<0 at logout), Load on every request (a
// read-only record, see session.Store.Load), plus the single-use login flows, the token
// refresh (TryLock, Lookup, Update) and back-channel logout. *session.Store implements it.
type Sessions interface {
	sessions.Store
	Load(r *http.Request, name string) (*session.Record, error)
	PutFlow(ctx context.Context, state string, f session.Flow, ttl time.Duration) error
	TakeFlow(ctx context.Context, state string) (session.Flow, error)
	Revoke(ctx context.Context, handle string) error
	ClearCookie(w http.ResponseWriter)
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error)
	Lookup(ctx context.Context, handle string) (*session.Record, error)
	Update(ctx context.Context, rec *session.Record) error
	RevokeIdPSession(ctx context.Context, issuer, sid string) (int, error)
	RevokeSubject(ctx context.Context, issuer, subject string) (int, error)
}

// Users provisions the user at every login and records audit events. *users.Store implements it.
// Audit must not block.
type Users interface {
	Upsert(ctx context.Context, p users.Profile) (users.User, error)
	Audit(e users.Event)
}

// OIDCOptions configures the identity provider.
type OIDCOptions struct {
	Issuer, ClientID, ClientSecret string
	Scopes                         []string          // must include "openid"
	AuthParams                     map[string]string // extra authorize parameters, e.g. audience
	RolesClaim, GroupsClaim        string            // claim name, URL-shaped name or dotted path
	PostLogoutRedirect             string            // path on the public origin, or absolute URL
}

// Route is one entry of the route table with its access rules.
type Route struct {
	upstream.Route
	Access          Policy
	Methods         []string // allowed methods; empty allows all
	CSRFHeader      bool     // require "X-CSRF: 1" on state-changing requests
	PassAccessToken bool     // send "Authorization: Bearer <access token>" upstream (refreshed when due)
	IdentityJWT     bool     // send X-Auth-Identity, a JWT signed by Options.Assertions
}

// Options configures a Gateway. Sessions, Users, PublicURL, OIDC and Routes are required.
type Options struct {
	PublicURL      string // scheme://host[:port] the browser uses
	OIDC           OIDCOptions
	CookieName     string        // the session cookie; the login-flow cookie is CookieName+"-tx"
	Secure         bool          // Secure attribute of the login-flow cookie (the session store sets its own)
	SameSite       http.SameSite // SameSite of the session cookie; the flow cookie uses Lax unless this is None
	Sessions       Sessions
	Users          Users
	Routes         []Route
	AllowedOrigins []string // cross-site origins allowed to call with credentials
	TrustedProxies []netip.Prefix

	// HTTPClient talks to the IdP; it must have a timeout. Defaults to a client with 10s and a
	// keep-alive pool of 64 connections.
	HTTPClient *http.Client
	// UpstreamTransport overrides the proxy's transport (tests, benchmarks).
	UpstreamTransport http.RoundTripper
	Logger            *slog.Logger
	// AccessLog, when set, receives the access log: one JSON line per request of the main
	// listener, each in one Write call, the same line Logger's slog.JSONHandler would write
	// for it (time, level, msg "request", request_id, method, path, route, status, duration,
	// user_id, ip), encoded without slog. Lines are written only while Logger is enabled at
	// info. nil: the lines go through Logger.
	AccessLog io.Writer
	Now       func() time.Time
	// Observer receives metrics; nil counts nothing.
	Observer Observer
	// Bearer lets API clients authenticate with "Authorization: Bearer <JWT>" (docs/api-clients.md).
	Bearer BearerOptions
	// RefreshSkew: access tokens are refreshed this long before they expire (pass_access_token
	// routes). Default DefaultRefreshSkew (30s); keep it well below the IdP's token lifetime.
	RefreshSkew time.Duration
	// Assertions signs X-Auth-Identity and serves /.auth/jwks.json; required when a route has
	// IdentityJWT. Every instance must use signers that share keys (package assertion).
	Assertions Assertions
	// LoginRateLimit: requests per minute per client IP (clientIP, which honours
	// TrustedProxies) to /.auth/login and /.auth/callback together, answered 429 with
	// Retry-After beyond it. In process, per instance. 0 (the zero value) disables it; the
	// caller applies its own default (cmd/authgate: server.login_rate_limit, 60).
	LoginRateLimit int
	// LoginFlowsPerBrowser caps the logins one browser (its login-flow cookie) may start
	// within 10 minutes, counted in Sessions on every instance (429 beyond). 0 disables it;
	// cmd/authgate uses DefaultLoginFlowsPerBrowser.
	LoginFlowsPerBrowser int
}

// Gateway serves authgate's main listener. Build it with New; it is safe for concurrent use.
type Gateway struct {
	opts      Options
	origin    string // public origin, e.g. https://app.example.com
	publicURL *url.URL
	idp       *provider
	table     *upstream.Table
	proxy     *upstream.Proxy
	routes    []Route
	allowed   map[string]bool
	txCookie  string
	log       *slog.Logger
	now       func() time.Time
	auth      http.Handler // the /.auth/ endpoints
	handler   http.Handler // the middleware stack around dispatch
	obs       Observer
	bearer    *bearerAuth     // nil when bearer authentication is disabled
	refresh   *refreshState   // in-process backoff of failed token refreshes
	jwtCache  *assertionCache // signed X-Auth-Identity per session and route
	access    *accessLog      // nil: access lines go through log
	ids       *requestIDs
	// keepAPITokens: a route has pass_access_token, so sessions keep the access and refresh
	// tokens (see dropUnusedTokens).
	keepAPITokens bool
	// identities memoizes identity header fields per session record (identity.go).
	identities identityMemo
}

// New checks opts and builds a Gateway. Discovery at the IdP happens lazily at the first login
// (and is retried), so the gateway starts while the IdP is down. ctx bounds the lifetime of the
// background work (the IdP key set); cancel it when the gateway is no longer served.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	if opts.Sessions == nil || opts.Users == nil {
		return nil, errors.New("gateway: Sessions and Users are required")
	}
	pu, err := url.Parse(opts.PublicURL)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return nil, fmt.Errorf("gateway: public URL %q must be scheme://host[:port]", opts.PublicURL)
	}
	if opts.CookieName == "" {
		return nil, errors.New("gateway: CookieName is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = newIdPClient()
	}
	g := &Gateway{
		opts:      opts,
		origin:    strings.ToLower(pu.Scheme + "://" + pu.Host),
		publicURL: pu,
		routes:    opts.Routes,
		allowed:   make(map[string]bool, len(opts.AllowedOrigins)),
		txCookie:  opts.CookieName + "-tx",
		log:       opts.Logger,
		now:       opts.Now,
		ids:       newRequestIDs(),
	}
	g.keepAPITokens = slices.ContainsFunc(opts.Routes, func(r Route) bool { return r.PassAccessToken })
	if opts.AccessLog != nil {
		g.access = &accessLog{w: opts.AccessLog}
	}
	for _, o := range opts.AllowedOrigins {
		g.allowed[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	routes := make([]upstream.Route, len(opts.Routes))
	for i, r := range opts.Routes {
		routes[i] = r.Route
	}
	if g.table, err = upstream.NewTable(routes); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.proxy, err = upstream.New(upstream.Options{
		Routes:         routes,
		TrustedProxies: opts.TrustedProxies,
		GatewayCookies: g.ownsCookie,
		PublicHost:     pu.Host,
		Logger:         opts.Logger,
		Transport:      opts.UpstreamTransport,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.idp = newProvider(ctx, opts.OIDC, g.origin+authPrefix+"callback", opts.HTTPClient, opts.Logger)
	g.obs = opts.Observer
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	g.bearer = newBearer(g.opts)
	g.auth = g.authRoutes()
	g.handler = g.stack()
	if err := checkAssertionRoutes(opts); err != nil {
		return nil, err
	}
	g.refresh, g.jwtCache = newRefreshState(), newAssertionCache()
	return g, nil
}

// ownsCookie reports whether a cookie name belongs to the gateway (never forwarded upstream).
func (g *Gateway) ownsCookie(name string) bool {
	return name == g.opts.CookieName || name == g.txCookie
}
