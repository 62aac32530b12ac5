package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/authgate/authgate/assertion"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

// Assertions signs the X-Auth-Identity assertions of identity_jwt routes and serves the keys
// that verify them. *assertion.Signer implements it; every instance must share its keys.
type Assertions interface {
	Sign(ctx context.Context, c assertion.Claims) (token string, expires time.Time, err error)
	JWKS(ctx context.Context) ([]byte, error)
}

const (
	identityHeader    = "X-Auth-Identity"
	assertionCacheTTL = 30 * time.Second // reuse of one signed assertion per session and route
	assertionMinLife  = 30 * time.Second // a cached assertion always has this much life left
	assertionCacheMax = 10000            // bound of the in-process cache
	jwksMaxAge        = "public, max-age=300"
)

// assertionCache keeps signed assertions per session and route for a short while, so the hot
// path signs at most once every assertionCacheTTL per session and route.
type assertionCache struct {
	mu sync.Mutex
	m  map[string]cachedAssertion
}

type cachedAssertion struct {
	token string
	until time.Time
}

func newAssertionCache() *assertionCache {
	return &assertionCache{m: make(map[string]cachedAssertion)}
}

func (c *assertionCache) get(key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.until) {
		return "", false
	}
	return e.token, true
}

func (c *assertionCache) put(key, token string, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= assertionCacheMax {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= assertionCacheMax {
			clear(c.m)
		}
	}
	c.m[key] = cachedAssertion{token: token, until: until}
}

// checkAssertionRoutes refuses a route table with identity_jwt routes but no signer.
func checkAssertionRoutes(opts Options) error {
	for _, r := range opts.Routes {
		if r.IdentityJWT && opts.Assertions == nil {
			return fmt.Errorf("gateway: route %q has IdentityJWT but Options.Assertions is nil", r.Name)
		}
	}
	return nil
}

// addIdentityJWT appends X-Auth-Identity to h for an identity_jwt route: iss = the public
// origin, aud = the route name, sub = the user id, email, roles, groups. A signer failure is a
// 503: the request is not forwarded without the assertion the upstream expects.
func (g *Gateway) addIdentityJWT(ctx context.Context, h []upstream.Field, rec *session.Record, rt *Route) ([]upstream.Field, error) {
	if !rt.IdentityJWT {
		return h, nil
	}
	key := rec.Handle + "\x00" + rt.Name
	now := g.now()
	if tok, ok := g.jwtCache.get(key, now); ok {
		return append(h, upstream.Field{Name: identityHeader, Value: tok}), nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimout)
	defer cancel()
	tok, exp, err := g.opts.Assertions.Sign(ctx, assertion.Claims{Issuer: g.origin, Audience: rt.Name,
		Subject: rec.UserID, Email: rec.Email, Roles: rec.Roles, Groups: rec.Groups})
	if err != nil {
		return nil, fail(http.StatusServiceUnavailable, "assertion_unavailable",
			"The service is temporarily unavailable. Please try again shortly.", err)
	}
	until := now.Add(assertionCacheTTL)
	if last := exp.Add(-assertionMinLife); last.Before(until) {
		until = last
	}
	if now.Before(until) {
		g.jwtCache.put(key, tok, until, now)
	}
	return append(h, upstream.Field{Name: identityHeader, Value: tok}), nil
}

// jwks serves the public keys of the identity assertions. Upstreams may cache them for 5
// minutes; a new key is published well before it signs (package assertion).
func (g *Gateway) jwks(w http.ResponseWriter, r *http.Request) error {
	body := []byte(`{"keys":[]}`)
	if g.opts.Assertions != nil {
		var err error
		if body, err = g.opts.Assertions.JWKS(r.Context()); err != nil {
			return fail(http.StatusServiceUnavailable, "assertion_unavailable",
				"The keys are temporarily unavailable. Please try again shortly.", err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", jwksMaxAge)
	h.Del("Pragma")
	_, _ = w.Write(body)
	return nil
}
