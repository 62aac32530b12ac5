package scale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgate/authgate/assertion"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
)

// identityClaims are the claims of X-Auth-Identity beyond the registered ones.
type identityClaims struct {
	Email  string   `json:"email"`
	Roles  []string `json:"roles"`
	Groups []string `json:"groups"`
}

// verifyIdentity is what an upstream does with X-Auth-Identity: find the key by kid in the
// gateway's JWKS, verify the ES256 signature, then check iss, aud (its own route name) and exp.
func verifyIdentity(jwks []byte, token, issuer, audience string) (*jwt.Claims, *identityClaims, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, nil, err
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, nil, err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return nil, nil, errors.New("unknown kid")
	}
	var std jwt.Claims
	var extra identityClaims
	if err := tok.Claims(keys[0].Key, &std, &extra); err != nil {
		return nil, nil, err
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: time.Now()}, 0); err != nil {
		return nil, nil, err
	}
	return &std, &extra, nil
}

// verifyingUpstream trusts nothing but a valid X-Auth-Identity for its route; it fetches the
// JWKS from the gateway once and answers 200 with the subject, or 401.
type verifyingUpstream struct {
	audience string

	mu      sync.Mutex
	jwksURL string
	issuer  string
	jwks    []byte
	tokens  []string
}

func (v *verifyingUpstream) configure(jwksURL, issuer string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.jwksURL, v.issuer = jwksURL, issuer
}

func (v *verifyingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.jwks == nil {
		resp, err := http.Get(v.jwksURL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		v.jwks, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	tok := r.Header.Get("X-Auth-Identity")
	v.tokens = append(v.tokens, tok)
	std, extra, err := verifyIdentity(v.jwks, tok, v.issuer, v.audience)
	if err != nil {
		http.Error(w, "identity rejected: "+err.Error(), http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"sub": std.Subject, "email": extra.Email, "roles": extra.Roles,
		"groups": extra.Groups, "ttl": int64(*std.Expiry) - int64(*std.IssuedAt)})
}

func (v *verifyingUpstream) seen() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.tokens)
}

// TestIdentityJWTVerifiedByUpstream: the upstream of an identity_jwt route verifies
// X-Auth-Identity with the keys of /.auth/jwks.json, whichever instance signed it and whichever
// served the keys; a client cannot forge or inject it.
func TestIdentityJWTVerifiedByUpstream(t *testing.T) {
	up := &verifyingUpstream{audience: "jwt-api"}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	c := startCluster(t, clusterOptions{n: 2, targets: map[string]string{"jwt-api": srv.URL}})
	up.configure(c.Instances[1].URL+"/.auth/jwks.json", c.Instances[0].URL)
	client, rec := c.Login(t, "alice")

	forged := map[string]string{"X-Auth-Identity": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.", "Accept": "application/json"}
	for i, g := range c.Instances {
		resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/jwt/profile", forged)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("instance %d: %d %s", i, resp.StatusCode, body)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(map[string]any{"sub": rec.UserID, "email": "alice@example.com",
			"roles": []any{"super_admin"}, "groups": []any{"admins"}, "ttl": float64(60)})
		if fmt.Sprint(got) != want {
			t.Errorf("instance %d: upstream saw %v, want %v", i, got, want)
		}
	}

	// Cached per session and route: a second request on the same instance reuses the assertion.
	if resp, _ := fixture.Do(t, client, http.MethodGet, c.Instances[0].URL+"/jwt/again", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("second request: %d", resp.StatusCode)
	}
	toks := up.seen()
	if toks[2] != toks[0] {
		t.Error("instance 0 signed a new assertion for the same session and route within 30s")
	}
	// An assertion for this route is worthless at another route's upstream.
	jwks := fetchJWKS(t, c.Instances[0].URL)
	if _, _, err := verifyIdentity(jwks, toks[0], c.Instances[0].URL, "other-route"); err == nil {
		t.Error("an assertion for jwt-api verified with audience other-route")
	}
	// Routes without identity_jwt send none, and drop the client's.
	if resp, _ := fixture.Do(t, client, http.MethodGet, c.Instances[1].URL+"/plain", forged); resp.StatusCode != http.StatusOK {
		t.Fatalf("plain route: %d", resp.StatusCode)
	}
	if got, _ := c.Echo.Last(); got.Header.Get("X-Auth-Identity") != "" {
		t.Errorf("plain route forwarded X-Auth-Identity %q", got.Header.Get("X-Auth-Identity"))
	}
}

func TestJWKSEndpoint(t *testing.T) {
	c := startCluster(t, clusterOptions{n: 2})
	var first []byte
	for i, g := range c.Instances {
		resp, body := fixture.Do(t, http.DefaultClient, http.MethodGet, g.URL+"/.auth/jwks.json", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=300" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("instance %d: %d Cache-Control %q Content-Type %q", i, resp.StatusCode,
				resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("instance %d: JWKS %s (%v)", i, body, err)
		}
		k := set.Keys[0]
		if !k.IsPublic() || k.Algorithm != "ES256" || k.Use != "sig" || k.KeyID == "" {
			t.Errorf("instance %d: key public=%v alg=%q use=%q kid=%q", i, k.IsPublic(), k.Algorithm, k.Use, k.KeyID)
		}
		if first == nil {
			first = []byte(body)
		} else if string(first) != body {
			t.Errorf("instances serve different key sets:\n%s\n%s", first, body)
		}
	}
	if resp, _ := fixture.Do(t, http.DefaultClient, http.MethodPost, c.Instances[0].URL+"/.auth/jwks.json", nil); resp.StatusCode == http.StatusOK {
		t.Errorf("POST /.auth/jwks.json: %d", resp.StatusCode)
	}
}

// TestIdentityJWTWithMemoryStores: the single-instance setup (memory sessions, memory keys).
func TestIdentityJWTWithMemoryStores(t *testing.T) {
	signer, err := assertion.NewMemory(assertion.Options{Secrets: [][]byte{fixture.Secret()}})
	if err != nil {
		t.Fatal(err)
	}
	g := fixture.StartGateway(t, fixture.GatewayOptions{MemorySessions: true,
		Routes: []gateway.Route{{Route: upstream.Route{Name: "app", PathPrefix: "/"}, IdentityJWT: true}},
		Mutate: func(o *gateway.Options) { o.Assertions = signer }})
	client := g.Client()
	resp := g.Login(t, client, "/", "bob", "bob")
	resp.Body.Close()
	if resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/home", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /home: %d %s", resp.StatusCode, body)
	}
	got, _ := g.Echo.Last()
	std, extra, err := verifyIdentity(fetchJWKS(t, g.URL), got.Header.Get("X-Auth-Identity"), g.URL, "app")
	if err != nil {
		t.Fatalf("upstream could not verify X-Auth-Identity: %v", err)
	}
	if std.Subject != got.Header.Get("X-Auth-User-Id") || extra.Email != "bob@example.com" || !slices.Equal(extra.Roles, []string{"viewer"}) {
		t.Errorf("claims sub=%q email=%q roles=%v", std.Subject, extra.Email, extra.Roles)
	}
}

// TestIdentityJWTNeedsASigner: a route table with identity_jwt but no signer is refused.
func TestIdentityJWTNeedsASigner(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{MemorySessions: true})
	_, err := gateway.New(context.Background(), gateway.Options{PublicURL: g.URL, CookieName: "c",
		Sessions: g.Sessions, Users: g.Users,
		Routes: []gateway.Route{{Route: upstream.Route{Name: "app", PathPrefix: "/", Target: fixture.MustURL(t, g.Echo.URL)}, IdentityJWT: true}}})
	if err == nil {
		t.Error("gateway.New accepted an identity_jwt route without Options.Assertions")
	}
}

func fetchJWKS(t *testing.T, base string) []byte {
	t.Helper()
	resp, body := fixture.Do(t, http.DefaultClient, http.MethodGet, base+"/.auth/jwks.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	return []byte(body)
}
