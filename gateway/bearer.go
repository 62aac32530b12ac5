package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Limits of bearer authentication.
const (
	bearerSkew           = 60 * time.Second // tolerated clock difference for exp, nbf and iat
	maxBearerLen         = 16 << 10         // longer Authorization values are refused unread
	keysMaxAge           = time.Hour        // cached JWKS older than this are fetched again on use
	defaultMinKeyRefresh = 10 * time.Second
	maxSubjectLen        = 255
)

// bearerAlgs are the signature algorithms a bearer JWT may use: asymmetric only, never HS*
// (key confusion with a public key) and never "none".
var bearerAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// BearerOptions enables API clients that call with "Authorization: Bearer <JWT>" instead of the
// cookie. The zero value disables it. A token is accepted when its signature verifies with a
// key of its issuer's JWKS (an asymmetric algorithm), its iss is OIDC.Issuer or one of
// TrustedIssuers exactly, its aud lists one of Audiences, and exp/nbf/iat hold within 60s. No
// session is created and nothing is read from the database: the identity is the token's claims,
// mapped like the ID token at login (OIDC.RolesClaim, OIDC.GroupsClaim). See docs/api-clients.md.
type BearerOptions struct {
	Enabled bool
	// Audiences are the accepted aud values; default: OIDC.ClientID. Set your API's audience.
	Audiences []string
	// TrustedIssuers are accepted besides OIDC.Issuer, with the same claim mapping.
	TrustedIssuers []string
	// MinKeyRefresh is the shortest time between two JWKS fetches of one issuer caused by an
	// unknown key id (key rotation); default 10s. It bounds what forged key ids cost the IdP.
	MinKeyRefresh time.Duration
}

// bearerError is a rejected bearer token: reason is a short fixed text for the client,
// err the detail for the log. unavailable means the issuer's keys could not be fetched.
type bearerError struct {
	reason      string
	unavailable bool
	err         error
}

func (e *bearerError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *bearerError) Unwrap() error { return e.err }

func rejectToken(reason string, err error) *bearerError {
	return &bearerError{reason: reason, err: err}
}

// bearerAuth verifies bearer JWTs. Issuers are discovered lazily (and retried), so the gateway
// starts while an IdP is down.
type bearerAuth struct {
	audiences     []string
	issuers       map[string]*bearerIssuer
	roles, groups string
	client        *http.Client
	now           func() time.Time
	minRefresh    time.Duration
	log           *slog.Logger
}

// newBearer returns nil when bearer authentication is disabled.
func newBearer(opts Options) *bearerAuth {
	bo := opts.Bearer
	if !bo.Enabled {
		return nil
	}
	b := &bearerAuth{audiences: bo.Audiences, issuers: map[string]*bearerIssuer{},
		roles: opts.OIDC.RolesClaim, groups: opts.OIDC.GroupsClaim, client: opts.HTTPClient,
		now: opts.Now, minRefresh: bo.MinKeyRefresh, log: opts.Logger}
	if len(b.audiences) == 0 {
		b.audiences = []string{opts.OIDC.ClientID}
	}
	if b.minRefresh <= 0 {
		b.minRefresh = defaultMinKeyRefresh
	}
	for _, iss := range append([]string{opts.OIDC.Issuer}, bo.TrustedIssuers...) {
		if iss != "" {
			b.issuers[iss] = &bearerIssuer{b: b, issuer: iss}
		}
	}
	return b
}

// hasBearer reports whether r carries an Authorization header with the Bearer scheme (any case).
func hasBearer(r *http.Request) bool {
	for _, v := range r.Header.Values("Authorization") {
		if scheme, _, _ := strings.Cut(strings.TrimSpace(v), " "); strings.EqualFold(scheme, "Bearer") {
			return true
		}
	}
	return false
}

// bearerToken returns the token of r's one Authorization: Bearer header.
func bearerToken(r *http.Request) (string, *bearerError) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", rejectToken("malformed token", errors.New("several Authorization headers"))
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > maxBearerLen || strings.ContainsAny(tok, " \t") {
		return "", rejectToken("malformed token", nil)
	}
	return tok, nil
}

// authenticate verifies the bearer token of r and returns its identity and the token.
func (b *bearerAuth) authenticate(ctx context.Context, r *http.Request) (*Identity, string, error) {
	raw, be := bearerToken(r)
	if be != nil {
		return nil, "", be
	}
	hdr, iss, be := peekJWT(raw)
	if be != nil {
		return nil, "", be
	}
	if !containsString(bearerAlgs, hdr.Alg) {
		return nil, "", rejectToken("unsupported algorithm", fmt.Errorf("alg %q", truncate(hdr.Alg, 16)))
	}
	if strings.EqualFold(hdr.Typ, "logout+jwt") {
		return nil, "", rejectToken("not an access token", errors.New("logout token"))
	}
	issuer, ok := b.issuers[iss]
	if !ok {
		return nil, "", rejectToken("untrusted issuer", nil)
	}
	v, err := issuer.verifier(ctx)
	if err != nil {
		return nil, "", &bearerError{reason: "issuer unavailable", unavailable: true, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, idpTimeout)
	defer cancel()
	slot := &keyFailure{}
	idt, err := v.Verify(context.WithValue(ctx, keyFailureKey{}, slot), raw)
	if err != nil {
		if slot.err != nil {
			return nil, "", slot.err
		}
		return nil, "", rejectToken("invalid token", err)
	}
	id, err := b.identity(idt)
	return id, raw, err
}

// bearerClaims are the claims checked and mapped after the signature has been verified.
type bearerClaims struct {
	Issuer        string          `json:"iss"`
	Subject       string          `json:"sub"`
	Audience      json.RawMessage `json:"aud"`
	Expiry        *float64        `json:"exp"`
	NotBefore     *float64        `json:"nbf"`
	IssuedAt      *float64        `json:"iat"`
	Email         string          `json:"email"`
	EmailVerified any             `json:"email_verified"`
	Name          string          `json:"name"`
	Events        json.RawMessage `json:"events"`
}

// identity checks the verified claims (aud, time, subject, token kind) and maps them.
func (b *bearerAuth) identity(idt *oidc.IDToken) (*Identity, error) {
	var c bearerClaims
	var raw map[string]any
	if err := idt.Claims(&c); err != nil || idt.Claims(&raw) != nil {
		return nil, rejectToken("malformed token", err)
	}
	if len(c.Events) > 0 {
		return nil, rejectToken("not an access token", errors.New("events claim"))
	}
	if !b.audienceOK(c.Audience) {
		return nil, rejectToken("wrong audience", nil)
	}
	now := b.now()
	switch {
	case c.Expiry == nil:
		return nil, rejectToken("missing expiry", nil)
	case now.After(unixTime(*c.Expiry).Add(bearerSkew)):
		return nil, rejectToken("token expired", nil)
	case c.NotBefore != nil && unixTime(*c.NotBefore).After(now.Add(bearerSkew)),
		c.IssuedAt != nil && unixTime(*c.IssuedAt).After(now.Add(bearerSkew)):
		return nil, rejectToken("token not yet valid", nil)
	}
	if c.Subject == "" || len(c.Subject) > maxSubjectLen || !headerSafe(c.Subject) {
		return nil, rejectToken("invalid subject", nil)
	}
	return &Identity{
		Subject: c.Subject, Issuer: c.Issuer,
		Email: cleanHeaderValue(c.Email), EmailVerified: c.EmailVerified == true,
		Name:   cleanHeaderValue(c.Name),
		Roles:  claimStrings(raw, b.roles),
		Groups: claimStrings(raw, b.groups),
	}, nil
}

// audienceOK reports whether aud (a string or a list of strings) names an accepted audience.
func (b *bearerAuth) audienceOK(aud json.RawMessage) bool {
	var list []string
	var one string
	if json.Unmarshal(aud, &one) == nil {
		list = []string{one}
	} else if json.Unmarshal(aud, &list) != nil {
		return false
	}
	for _, a := range list {
		if a != "" && containsString(b.audiences, a) {
			return true
		}
	}
	return false
}

// unixTime converts a NumericDate, clamped to [1970, 9999] so that a huge value cannot wrap
// around to the past when converted to an integer.
func unixTime(f float64) time.Time {
	const maxUnix = 253402300799 // 9999-12-31T23:59:59Z
	return time.Unix(int64(min(max(f, 0), maxUnix)), 0)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// jwtHeader is the part of a JWS header read before verification (to pick the issuer's keys).
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

// peekJWT decodes a compact JWS's header and its iss claim WITHOUT verifying anything; the
// values only select which issuer's verifier checks the token.
func peekJWT(raw string) (jwtHeader, string, *bearerError) {
	var h jwtHeader
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return h, "", rejectToken("malformed token", errors.New("not a compact JWS"))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &h) != nil {
		return h, "", rejectToken("malformed token", err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	var p struct {
		Issuer string `json:"iss"`
	}
	if err != nil || json.Unmarshal(pb, &p) != nil {
		return h, "", rejectToken("malformed token", err)
	}
	return h, p.Issuer, nil
}

// bearerIssuer is one trusted issuer, discovered at first use.
type bearerIssuer struct {
	b      *bearerAuth
	issuer string
	ready  atomic.Pointer[oidc.IDTokenVerifier]
	mu     sync.Mutex
	lastF  time.Time // last failed discovery
	lastE  error
}

// verifier returns the issuer's verifier, running discovery if it has not succeeded yet (a
// failure is remembered for discoveryRetry).
func (i *bearerIssuer) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if v := i.ready.Load(); v != nil {
		return v, nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if v := i.ready.Load(); v != nil {
		return v, nil
	}
	if !i.lastF.IsZero() && i.b.now().Sub(i.lastF) < discoveryRetry {
		return nil, i.lastE
	}
	// Not cancelled with the request: a client going away must not fail discovery for others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idpTimeout)
	defer cancel()
	v, err := i.discover(ctx)
	if err != nil {
		i.lastF, i.lastE = i.b.now(), fmt.Errorf("%w: %w", errIdPUnavailable, err)
		i.b.log.Warn("bearer issuer discovery failed", "issuer", i.issuer, "err", err)
		return nil, i.lastE
	}
	i.ready.Store(v)
	return v, nil
}

// discover reads the issuer's jwks_uri (go-oidc checks that the document's issuer is exactly
// i.issuer) and builds a verifier over a key set with a rate-limited refresh.
func (i *bearerIssuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	pr, err := oidc.NewProvider(oidc.ClientContext(ctx, i.b.client), i.issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := pr.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, fmt.Errorf("discovery document has no jwks_uri: %w", err)
	}
	ks := &keySet{url: meta.JWKS, client: i.b.client, now: i.b.now, minRefresh: i.b.minRefresh, log: i.b.log}
	return oidc.NewVerifier(i.issuer, ks, &oidc.Config{
		SkipClientIDCheck:    true, // aud is checked against the configured audiences (audienceOK)
		SkipExpiryCheck:      true, // exp/nbf/iat are checked with bearerSkew (identity)
		SupportedSigningAlgs: bearerAlgs,
		Now:                  i.b.now,
	}), nil
}

// keyFailureKey carries a *keyFailure through go-oidc's Verify, so that the key set can tell
// why a signature was refused (go-oidc flattens the key set's error into text).
type keyFailureKey struct{}

type keyFailure struct{ err *bearerError }

// keySet is an issuer's JWKS, cached. An unknown key id triggers a fetch (key rotation), at
// most once per minRefresh; keys older than keysMaxAge are fetched again on use. It implements
// oidc.KeySet.
type keySet struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	log        *slog.Logger

	cur     atomic.Pointer[keyCache]
	mu      sync.Mutex // serialises fetches
	lastTry time.Time
	lastErr error
}

type keyCache struct {
	keys    []jose.JSONWebKey
	fetched time.Time
}

// has reports whether the cache holds kid ("" means any key may be tried).
func (c *keyCache) has(kid string) bool {
	if kid == "" {
		return true
	}
	for _, k := range c.keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// VerifySignature verifies raw with the issuer's public signing keys and returns its payload.
// go-oidc has already refused algorithms outside bearerAlgs.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	failed := func(be *bearerError) ([]byte, error) {
		if slot, ok := ctx.Value(keyFailureKey{}).(*keyFailure); ok {
			slot.err = be
		}
		return nil, be
	}
	jws, err := jose.ParseSigned(raw, joseAlgs())
	if err != nil || len(jws.Signatures) != 1 {
		return failed(rejectToken("malformed token", err))
	}
	h := jws.Signatures[0].Header
	keys, err := k.keysFor(ctx, h.KeyID)
	if err != nil {
		return failed(&bearerError{reason: "issuer unavailable", unavailable: true, err: err})
	}
	found, usable := false, false
	for _, key := range keys {
		if h.KeyID != "" && key.KeyID != h.KeyID {
			continue
		}
		found = true
		// A key published with an alg (or for encryption) is used for nothing else.
		if (key.Use != "" && key.Use != "sig") || (key.Algorithm != "" && key.Algorithm != h.Algorithm) || !key.IsPublic() {
			continue
		}
		usable = true
		if payload, err := jws.Verify(key); err == nil {
			return payload, nil
		}
	}
	switch {
	case !found:
		return failed(rejectToken("unknown signing key", nil))
	case !usable:
		return failed(rejectToken("key not usable with this algorithm", nil))
	}
	return failed(rejectToken("invalid signature", nil))
}

// keysFor returns the cached keys, fetching them first when kid is unknown or the cache is
// old, unless the last fetch was less than minRefresh ago.
func (k *keySet) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	fresh := func(c *keyCache, now time.Time) bool {
		return c != nil && c.has(kid) && now.Sub(c.fetched) < keysMaxAge
	}
	if c := k.cur.Load(); fresh(c, k.now()) {
		return c.keys, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now, c := k.now(), k.cur.Load()
	if fresh(c, now) {
		return c.keys, nil
	}
	if since := now.Sub(k.lastTry); !k.lastTry.IsZero() && since >= 0 && since < k.minRefresh {
		if c != nil {
			return c.keys, nil
		}
		return nil, k.lastErr
	}
	k.lastTry = now
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idpTimeout)
	defer cancel()
	keys, err := k.fetch(fctx)
	if err != nil {
		k.lastErr = err
		k.log.Warn("fetching bearer token keys failed", "url", k.url, "err", err)
		if c != nil {
			return c.keys, nil
		}
		return nil, err
	}
	k.lastErr = nil
	k.cur.Store(&keyCache{keys: keys, fetched: now})
	return keys, nil
}

// fetch GETs the JWKS. Keys that do not parse (unknown kty, ...) are skipped, not fatal.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", resp.StatusCode)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := make([]jose.JSONWebKey, 0, len(doc.Keys))
	for _, rk := range doc.Keys {
		var key jose.JSONWebKey
		if key.UnmarshalJSON(rk) == nil {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable keys")
	}
	return keys, nil
}

func joseAlgs() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(bearerAlgs))
	for i, a := range bearerAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}
