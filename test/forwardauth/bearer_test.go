package forwardauth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
)

// bearerRoutes adds a pass_access_token route to the fixture's default routes.
func bearerRoutes() []gateway.Route {
	return append([]gateway.Route{{Route: upstream.Route{Name: "legacy", PathPrefix: "/legacy/"}, PassAccessToken: true}},
		fixture.DefaultRoutes()...)
}

type bearerEnv struct {
	g   *fixture.Gateway
	op  *fixture.CraftedOP
	clk *clock
}

// startBearer starts a gateway whose IdP is a CraftedOP, with bearer authentication set by bo.
func startBearer(t *testing.T, bo gateway.BearerOptions) *bearerEnv {
	t.Helper()
	op := fixture.StartCraftedOP(t)
	clk := newClock()
	g := fixture.StartGateway(t, fixture.GatewayOptions{Issuer: op.Issuer, ClientSecret: "crafted-secret",
		MemorySessions: true, Now: clk.Now, Routes: bearerRoutes(),
		Mutate: func(o *gateway.Options) { o.Bearer = bo }})
	return &bearerEnv{g: g, op: op, clk: clk}
}

// claims is a valid access-token claim set of the CraftedOP (aud = the client id).
func (e *bearerEnv) claims() map[string]any {
	c := e.op.DefaultClaims()
	delete(c, "nonce")
	c["iat"], c["exp"] = e.clk.Now().Unix(), e.clk.Now().Add(5*time.Minute).Unix()
	return c
}

func (e *bearerEnv) token(mutate func(map[string]any), alg string) string {
	c := e.claims()
	if mutate != nil {
		mutate(c)
	}
	return e.op.Sign(c, alg)
}

// foreignToken is RS256-signed by a key the IdP never published, under key id kid.
func foreignToken(t *testing.T, claims map[string]any, kid string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signRS256(t, key, claims, kid)
}

// signRS256 signs claims with key; an empty kid leaves the header without one.
func signRS256(t *testing.T, key *rsa.PrivateKey, claims map[string]any, kid string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

func wantChallenge(t *testing.T, resp *http.Response, body, reason, token string) {
	t.Helper()
	want := `Bearer error="invalid_token", error_description="` + reason + `"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("got %d WWW-Authenticate %q, want 401 %q (body %s)", resp.StatusCode,
			resp.Header.Get("WWW-Authenticate"), want, body)
	}
	if jsonField(body, "error") != "invalid_token" {
		t.Fatalf("body = %s, want JSON error invalid_token", body)
	}
	if token != "" && strings.Contains(body, token) {
		t.Fatal("the answer echoes the token")
	}
}

func TestBearerTokens(t *testing.T) {
	e := startBearer(t, gateway.BearerOptions{Enabled: true})
	tests := []struct {
		name       string
		token      func() string
		scheme     string // default "Bearer"
		wantReason string // "" means accepted
	}{
		{name: "valid RS256", token: func() string { return e.token(nil, "RS256") }},
		{name: "PS256 with a key published for RS256", wantReason: "key not usable with this algorithm",
			token: func() string { return e.token(nil, "PS256") }},
		{name: "valid RS256 without kid", token: func() string { return signRS256(t, e.op.Key, e.claims(), "") }},
		{name: "scheme in lower case", scheme: "bearer", token: func() string { return e.token(nil, "RS256") }},
		{name: "aud list with ours", token: func() string {
			return e.token(func(c map[string]any) { c["aud"] = []string{"other-api", "authgate"} }, "RS256")
		}},
		{name: "expired within skew", token: func() string {
			return e.token(func(c map[string]any) { c["exp"] = e.clk.Now().Add(-30 * time.Second).Unix() }, "RS256")
		}},
		{name: "expired", wantReason: "token expired", token: func() string {
			return e.token(func(c map[string]any) { c["exp"] = e.clk.Now().Add(-2 * time.Minute).Unix() }, "RS256")
		}},
		{name: "no exp", wantReason: "missing expiry", token: func() string {
			return e.token(func(c map[string]any) { delete(c, "exp") }, "RS256")
		}},
		{name: "nbf in the future", wantReason: "token not yet valid", token: func() string {
			return e.token(func(c map[string]any) { c["nbf"] = e.clk.Now().Add(5 * time.Minute).Unix() }, "RS256")
		}},
		{name: "nbf absurdly far in the future", wantReason: "token not yet valid", token: func() string {
			return e.token(func(c map[string]any) { c["nbf"] = 1e300 }, "RS256")
		}},
		{name: "iat in the future", wantReason: "token not yet valid", token: func() string {
			return e.token(func(c map[string]any) { c["iat"] = e.clk.Now().Add(time.Hour).Unix() }, "RS256")
		}},
		{name: "wrong aud", wantReason: "wrong audience", token: func() string {
			return e.token(func(c map[string]any) { c["aud"] = "other-client" }, "RS256")
		}},
		{name: "no aud", wantReason: "wrong audience", token: func() string {
			return e.token(func(c map[string]any) { delete(c, "aud") }, "RS256")
		}},
		{name: "wrong iss", wantReason: "untrusted issuer", token: func() string {
			return e.token(func(c map[string]any) { c["iss"] = "https://evil.example" }, "RS256")
		}},
		{name: "iss with trailing slash", wantReason: "untrusted issuer", token: func() string {
			return e.token(func(c map[string]any) { c["iss"] = e.op.Issuer + "/" }, "RS256")
		}},
		{name: "alg none", wantReason: "unsupported algorithm", token: func() string { return e.token(nil, "none") }},
		{name: "HS256 with the public key", wantReason: "unsupported algorithm", token: func() string { return e.token(nil, "HS256") }},
		{name: "signed by another key, same kid", wantReason: "invalid signature", token: func() string { return e.token(nil, "RS256-other") }},
		{name: "unknown kid", wantReason: "unknown signing key", token: func() string { return foreignToken(t, e.claims(), "nope") }},
		{name: "payload swapped", wantReason: "invalid signature", token: func() string {
			parts := strings.Split(e.token(nil, "RS256"), ".")
			forged := e.claims()
			forged["sub"], forged["roles"] = "someone-else", []string{"super_admin"}
			p, _ := json.Marshal(forged)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
		}},
		{name: "logout token", wantReason: "not an access token", token: func() string {
			return e.token(func(c map[string]any) {
				c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
			}, "RS256")
		}},
		{name: "empty sub", wantReason: "invalid subject", token: func() string {
			return e.token(func(c map[string]any) { c["sub"] = "" }, "RS256")
		}},
		{name: "garbage", wantReason: "malformed token", token: func() string { return "not-a-jwt" }},
		{name: "three garbage parts", wantReason: "malformed token", token: func() string { return "a.b.c" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme := tt.scheme
			if scheme == "" {
				scheme = "Bearer"
			}
			tok := tt.token()
			before := e.g.Echo.Count()
			resp, body := do(t, http.MethodGet, e.g.URL+"/api/things", map[string]string{
				"Authorization": scheme + " " + tok, "X-Auth-User-Id": "spoofed", "Accept": "text/html"})
			if tt.wantReason != "" {
				wantChallenge(t, resp, body, tt.wantReason, tok)
				if e.g.Echo.Count() != before {
					t.Fatal("a refused token reached the upstream")
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 (WWW-Authenticate %q, body %s)", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
			got, _ := e.g.Echo.Last()
			if got.Header.Get("X-Auth-Subject") != "crafted-subject" || got.Header.Get("X-Auth-Email") != "crafted@example.com" {
				t.Fatalf("upstream identity headers: %v", got.Header)
			}
			if v, ok := got.Header["X-Auth-User-Id"]; ok {
				t.Fatalf("a bearer caller has no user id, upstream got X-Auth-User-Id %q", v)
			}
			if got.Header.Get("Authorization") != "" {
				t.Fatal("the caller's token was forwarded to a route without pass_access_token")
			}
		})
	}
}

func TestBearerPolicyAndPassToken(t *testing.T) {
	e := startBearer(t, gateway.BearerOptions{Enabled: true})
	admin := e.token(func(c map[string]any) { c["roles"] = []string{"super_admin"}; c["groups"] = []string{"ops"} }, "RS256")
	plain := e.token(nil, "RS256")
	tests := []struct {
		name, path, token string
		want              int
		wantAuthorization string
	}{
		{name: "admin role on /admin/", path: "/admin/users", token: admin, want: http.StatusOK},
		{name: "no role on /admin/", path: "/admin/users", token: plain, want: http.StatusForbidden},
		{name: "pass_access_token forwards the caller's token", path: "/legacy/x", token: plain, want: http.StatusOK,
			wantAuthorization: "Bearer " + plain},
		{name: "public route: token untouched and not checked", path: "/public/x", token: "garbage", want: http.StatusOK,
			wantAuthorization: "Bearer garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.g.Echo.Count()
			resp, body := do(t, http.MethodGet, e.g.URL+tt.path, map[string]string{"Authorization": "Bearer " + tt.token})
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want != http.StatusOK {
				if e.g.Echo.Count() != before {
					t.Fatal("a denied request reached the upstream")
				}
				return
			}
			got, _ := e.g.Echo.Last()
			if a := got.Header.Get("Authorization"); a != tt.wantAuthorization {
				t.Fatalf("upstream Authorization = %q, want %q", a, tt.wantAuthorization)
			}
		})
	}
	if got := e.g.Echo.All()[0]; got.Header.Get("X-Auth-Roles") != "super_admin" || got.Header.Get("X-Auth-Groups") != "ops" {
		t.Fatalf("roles/groups from the token's claims: %v", got.Header)
	}
}

// loginCrafted logs a browser in through the CraftedOP (no login page) and returns its jar.
func loginCrafted(t *testing.T, e *bearerEnv) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	resp, err := c.Get(e.g.URL + "/.auth/login?return_to=/public/landing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/public/landing" {
		t.Fatalf("login ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	return jar
}

func withJar(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestBearerDecidesAloneNextToACookie(t *testing.T) {
	e := startBearer(t, gateway.BearerOptions{Enabled: true})
	c := withJar(loginCrafted(t, e))
	req, _ := http.NewRequest(http.MethodGet, e.g.URL+"/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+e.token(nil, "HS256"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a bad bearer next to a live cookie got %d, want 401", resp.StatusCode)
	}
	// The cookie alone works, and a client Authorization that is not Bearer is not forwarded;
	// on a pass_access_token route the session's own access token replaces it.
	for path, want := range map[string]string{"/api/x": "", "/legacy/x": "Bearer crafted-access-"} {
		req, _ = http.NewRequest(http.MethodGet, e.g.URL+path, nil)
		req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got, _ := e.g.Echo.Last()
		if a := got.Header.Get("Authorization"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(a, want) || (want == "" && a != "") {
			t.Fatalf("%s with the cookie: status %d, upstream Authorization %q, want prefix %q", path, resp.StatusCode, a, want)
		}
	}
}

func TestBearerDisabled(t *testing.T) {
	e := startBearer(t, gateway.BearerOptions{})
	before := e.g.Echo.Count()
	resp, body := do(t, http.MethodGet, e.g.URL+"/api/x", map[string]string{"Authorization": "Bearer " + e.token(nil, "RS256")})
	if resp.StatusCode != http.StatusUnauthorized || jsonField(body, "error") != "unauthenticated" ||
		resp.Header.Get("WWW-Authenticate") != "" || e.g.Echo.Count() != before {
		t.Fatalf("bearer disabled: %d %q %s, want the plain 401", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
}

func TestBearerNoCredentialsGetsChallenge(t *testing.T) {
	e := startBearer(t, gateway.BearerOptions{Enabled: true})
	resp, body := do(t, http.MethodGet, e.g.URL+"/api/x", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusUnauthorized || jsonField(body, "error") != "unauthenticated" ||
		resp.Header.Get("WWW-Authenticate") != `Bearer realm="authgate"` {
		t.Fatalf("got %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// TestBearerKeyRotation: a token under a new key id is accepted once the JWKS was fetched again,
// without a restart; the fetch an unknown kid triggers is rate-limited.
func TestBearerKeyRotation(t *testing.T) {
	e := startBearer(t, gateway.BearerOptions{Enabled: true, MinKeyRefresh: 10 * time.Second})
	call := func(tok string) (*http.Response, string) {
		return do(t, http.MethodGet, e.g.URL+"/api/x", map[string]string{"Authorization": "Bearer " + tok})
	}
	old := e.token(nil, "RS256")
	if resp, body := call(old); resp.StatusCode != http.StatusOK {
		t.Fatalf("before rotation: %d %s", resp.StatusCode, body)
	}
	e.op.RotateKey()
	rotated := e.token(nil, "RS256")
	resp, body := call(rotated)
	wantChallenge(t, resp, body, "unknown signing key", rotated) // keys fetched less than 10s ago
	e.clk.advance(11 * time.Second)
	if resp, body := call(rotated); resp.StatusCode != http.StatusOK {
		t.Fatalf("after rotation and refresh interval: %d %s", resp.StatusCode, body)
	}
	resp, body = call(old)
	wantChallenge(t, resp, body, "unknown signing key", old) // the old key is gone from the JWKS
}

func TestBearerTrustedIssuers(t *testing.T) {
	other := fixture.StartCraftedOP(t)
	e := startBearer(t, gateway.BearerOptions{Enabled: true, Audiences: []string{"https://api.example.com"},
		TrustedIssuers: []string{other.Issuer, "http://127.0.0.1:1"}})
	claims := func(iss string) map[string]any {
		c := e.claims()
		c["iss"], c["aud"] = iss, "https://api.example.com"
		return c
	}
	tests := []struct {
		name       string
		token      string
		want       int
		wantReason string
	}{
		{name: "configured issuer, configured audience", token: e.op.Sign(claims(e.op.Issuer), "RS256"), want: http.StatusOK},
		{name: "trusted issuer", token: other.Sign(claims(other.Issuer), "RS256"), want: http.StatusOK},
		{name: "client id is not an audience any more", token: e.token(nil, "RS256"), want: http.StatusUnauthorized, wantReason: "wrong audience"},
		{name: "trusted issuer's claims, our key", token: e.op.Sign(claims(other.Issuer), "RS256"), want: http.StatusUnauthorized, wantReason: "unknown signing key"},
		{name: "issuer unreachable", token: e.op.Sign(claims("http://127.0.0.1:1"), "RS256"), want: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, e.g.URL+"/api/x", map[string]string{"Authorization": "Bearer " + tt.token})
			if tt.wantReason != "" {
				wantChallenge(t, resp, body, tt.wantReason, tt.token)
				return
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
		})
	}
}

// TestBearerNeedsNoDatabase: the user store is only on the login path.
func TestBearerNeedsNoDatabase(t *testing.T) {
	e := startBearer(t, gateway.BearerOptions{Enabled: true})
	if err := e.g.Users.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, http.MethodGet, e.g.URL+"/api/x", map[string]string{"Authorization": "Bearer " + e.token(nil, "RS256")})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the user store closed: %d %s", resp.StatusCode, body)
	}
}
