// Package devidp is a development OpenID Provider for `authgate demo` and for tests.
//
// It is built on github.com/zitadel/oidc/v3/pkg/op and keeps everything in memory:
// users with plain-text passwords, one signing key generated at New (RS256 by
// default, ES256 on request: Options.SigningAlgorithm), auth
// requests, access and refresh tokens. It is NOT for production: there is no
// rate limiting, no persistence, no single sign-on session and no consent.
//
// What it offers: discovery, JWKS, authorize (code flow, PKCE S256 required),
// a username+password login page, token (authorization_code and refresh_token
// with rotation), userinfo, end_session and revocation. ID tokens carry sub,
// email, email_verified, name, preferred_username, roles, groups, nonce and a
// per-login sid.
package devidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a demo account. ID becomes the `sub` claim and must not contain ':'.
// Password is compared in plain text: never put a real password here.
type User struct {
	ID, Username, Password, Email, Name string
	EmailVerified                       bool
	Roles, Groups                       []string
}

// Client is a confidential OAuth client authenticating with client_secret_basic.
//
// RedirectURIs and PostLogoutRedirectURIs may be glob patterns (any entry
// containing '*', '?', '[' or '{'), e.g. "http://127.0.0.1:*/.auth/callback",
// so a test can register the client before its gateway port is known.
// Redirect globs follow doublestar.Match; post-logout globs follow path.Match,
// where '*' does not cross a '/'.
type Client struct {
	ID, Secret                           string
	RedirectURIs, PostLogoutRedirectURIs []string
}

// Options configures a Provider.
type Options struct {
	// Issuer is the exact issuer URL the relying party is configured with
	// (kept byte for byte, trailing slash included). http is only accepted
	// for loopback hosts. A path (e.g. http://127.0.0.1:8080/idp) is served by
	// Handler under that prefix: mount Handler at the issuer's path unstripped.
	Issuer string
	// Users defaults to DemoUsers() when empty.
	Users   []User
	Clients []Client
	// AccessTokenTTL is the lifetime of access tokens; default 5m.
	AccessTokenTTL time.Duration
	// IDTokenTTL is the lifetime of ID tokens; default 1h.
	IDTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of each refresh token; default 24h.
	RefreshTokenTTL time.Duration
	// SigningAlgorithm is the JWS algorithm of the ID tokens: "RS256" (the default; a
	// 2048-bit RSA key) or "ES256" (a P-256 key: signing costs about 1/40 of RS256, verifying
	// about 3 times more). Discovery and /keys advertise only the chosen one.
	SigningAlgorithm string
	// Logger receives the provider's own log lines; nil discards them.
	// (The zitadel library logs a few request errors through slog's default logger.)
	Logger *slog.Logger
}

// Provider is a running development OpenID Provider. It is safe for concurrent use.
// The caller serves Handler() on an HTTP listener whose URL matches Options.Issuer.
type Provider struct {
	issuer   string
	basePath string
	op       *op.Provider
	store    *storage
	handler  http.Handler
	page     *template.Template
	logger   *slog.Logger
}

// DemoUsers returns the two demo accounts: alice/alice (role super_admin, group admins)
// and bob/bob (role viewer, group staff). Each call returns fresh slices.
func DemoUsers() []User {
	return []User{
		{
			ID: "user-alice", Username: "alice", Password: "alice",
			Email: "alice@example.com", EmailVerified: true, Name: "Alice Example",
			Roles: []string{"super_admin"}, Groups: []string{"admins"},
		},
		{
			ID: "user-bob", Username: "bob", Password: "bob",
			Email: "bob@example.com", EmailVerified: true, Name: "Bob Example",
			Roles: []string{"viewer"}, Groups: []string{"staff"},
		},
	}
}

const (
	defaultAccessTokenTTL  = 5 * time.Minute
	defaultIDTokenTTL      = time.Hour
	defaultRefreshTokenTTL = 24 * time.Hour
	loggedOutPath          = "/logged-out"
	loginPath              = "/login"
)

// New validates opts, generates the signing key (RS256 unless Options.SigningAlgorithm says
// ES256) and builds the provider. It starts no listener: serve Handler() yourself.
func New(opts Options) (*Provider, error) {
	issuerURL, err := validateIssuer(opts.Issuer)
	if err != nil {
		return nil, err
	}
	opts = withDefaults(opts)
	alg, key, err := generateKey(opts.SigningAlgorithm)
	if err != nil {
		return nil, err
	}
	basePath := strings.TrimSuffix(issuerURL.Path, "/")
	store, err := newStorage(storageOptions{
		users:      opts.Users,
		clients:    opts.Clients,
		key:        key,
		alg:        alg,
		keyID:      randomID(12),
		accessTTL:  opts.AccessTokenTTL,
		idTTL:      opts.IDTokenTTL,
		refreshTTL: opts.RefreshTokenTTL,
		loginURL:   func(id string) string { return basePath + loginPath + "?authRequestID=" + url.QueryEscape(id) },
		logger:     opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	provider, err := newOP(opts.Issuer, basePath, store)
	if err != nil {
		return nil, err
	}
	p := &Provider{issuer: opts.Issuer, basePath: basePath, op: provider, store: store, logger: opts.Logger, page: newPageTemplate()}
	p.handler = p.routes()
	return p, nil
}

func withDefaults(opts Options) Options {
	if len(opts.Users) == 0 {
		opts.Users = DemoUsers()
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = defaultAccessTokenTTL
	}
	if opts.IDTokenTTL <= 0 {
		opts.IDTokenTTL = defaultIDTokenTTL
	}
	if opts.RefreshTokenTTL <= 0 {
		opts.RefreshTokenTTL = defaultRefreshTokenTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.SigningAlgorithm == "" {
		opts.SigningAlgorithm = string(jose.RS256)
	}
	return opts
}

// generateKey makes the signing key of alg: RS256 (RSA 2048) or ES256 (P-256).
func generateKey(alg string) (jose.SignatureAlgorithm, crypto.Signer, error) {
	var (
		key crypto.Signer
		err error
	)
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", nil, fmt.Errorf("devidp: signing algorithm %q: want RS256 or ES256", alg)
	}
	if err != nil {
		return "", nil, fmt.Errorf("devidp: generate signing key: %w", err)
	}
	return jose.SignatureAlgorithm(alg), key, nil
}

// validateIssuer accepts https issuers and http issuers on loopback hosts only.
func validateIssuer(issuer string) (*url.URL, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("devidp: issuer: %w", err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("devidp: issuer %q must be scheme://host[:port][/path] without query, fragment or userinfo", issuer)
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("devidp: issuer %q: http is only allowed on loopback hosts", issuer)
	default:
		return nil, fmt.Errorf("devidp: issuer %q: scheme must be http or https", issuer)
	}
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newOP(issuer, basePath string, store *storage) (*op.Provider, error) {
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, fmt.Errorf("devidp: generate token key: %w", err)
	}
	config := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "devidp",
		DefaultLogoutRedirectURI: basePath + loggedOutPath,
		CodeMethodS256:           true,
		GrantTypeRefreshToken:    true,
		SupportedClaims: []string{
			"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "azp", "sid", "at_hash", "c_hash",
			"name", "preferred_username", "email", "email_verified", claimRoles, claimGroups,
		},
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
	}
	provider, err := op.NewProvider(config, store, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("devidp: create provider: %w", err)
	}
	return provider, nil
}

// Handler serves every endpoint of the provider: discovery
// (/.well-known/openid-configuration), /keys, /authorize, /login, /oauth/token,
// /userinfo, /end_session, /revoke, /logged-out, all below the issuer's path.
// Mount it at the issuer's path without stripping the prefix.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer returns the issuer URL exactly as configured.
func (p *Provider) Issuer() string { return p.issuer }

// RefreshCount is the number of successful refresh_token grants so far.
func (p *Provider) RefreshCount() int { return p.store.refreshCount() }

// RefreshReuseCount is the number of refresh_token grants that presented a
// refresh token that had already been rotated (each was answered invalid_grant).
func (p *Provider) RefreshReuseCount() int { return p.store.reuseCount() }

// SetUserRoles replaces the roles of the user with that username. The change
// shows in tokens issued afterwards (new logins and refreshes). Unknown
// usernames are ignored.
func (p *Provider) SetUserRoles(username string, roles []string) {
	p.store.setUserRoles(username, slices.Clone(roles))
}

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(p.op.IssuerFromRequest)
	mux.HandleFunc("GET "+loginPath, p.loginForm)
	mux.Handle("POST "+loginPath, interceptor.HandlerFunc(p.loginSubmit))
	mux.HandleFunc("GET "+loggedOutPath, p.loggedOut)
	mux.Handle("/", p.op)
	h := securityHeaders(mux)
	if p.basePath == "" {
		return h
	}
	return http.StripPrefix(p.basePath, h)
}

// securityHeaders adds the headers every dev IdP page should carry.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// errUnknownClient and friends are plain errors: zitadel maps them to the right OAuth error.
var (
	errUnknownClient = errors.New("devidp: unknown client")
	errBadSecret     = errors.New("devidp: wrong client secret")
)
