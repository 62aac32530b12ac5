package security

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// craftedLogin runs one login against a CraftedOP: /.auth/login, the OP's authorize (which
// redirects straight back with a code), and the callback. It returns the callback's answer.
func craftedLogin(t *testing.T, g *fixture.Gateway, c *http.Client) (*http.Response, string) {
	t.Helper()
	authorize := startLogin(t, g, c, "return_to=%2Fhome")
	resp, _ := get(t, c, authorize.String())
	cb, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(cb.String(), g.URL+"/.auth/callback") {
		t.Fatalf("crafted authorize: %d %q %v", resp.StatusCode, resp.Header.Get("Location"), err)
	}
	return get(t, c, cb.String())
}

// TestIDTokenAttacks covers IDT-01..IDT-10 and IDT-12: every forged or invalid ID token from
// the token endpoint is refused with 401 "id_token_rejected", no session cookie, no session and
// no user row; the valid control logs in.
func TestIDTokenAttacks(t *testing.T) {
	op := fixture.StartCraftedOP(t)
	g := fixture.StartGateway(t, fixture.GatewayOptions{Issuer: op.Issuer, ClientSecret: "crafted-op-accepts-any-secret"})

	// An earlier, successful login whose nonce IDT-09 replays.
	op.TokenFunc = func(url.Values) (map[string]any, string) {
		c := op.DefaultClaims()
		c["sub"] = "earlier-login"
		return c, "RS256"
	}
	if resp, body := craftedLogin(t, g, g.Client()); resp.StatusCode != http.StatusFound {
		t.Fatalf("earlier login: %d %s", resp.StatusCode, body)
	}
	oldNonce := op.LastAuthorize().Get("nonce")

	now := time.Now()
	tests := []struct {
		name   string
		mutate func(claims map[string]any) // changes DefaultClaims
		alg    string                      // default RS256
		wantOK bool                        // the valid control
	}{
		{name: "IDT-05 wrong issuer", mutate: func(c map[string]any) { c["iss"] = "https://evil-idp.example" }},
		{name: "IDT-05 issuer with trailing slash", mutate: func(c map[string]any) { c["iss"] = op.Issuer + "/" }},
		{name: "IDT-05 issuer in upper case", mutate: func(c map[string]any) { c["iss"] = strings.ToUpper(op.Issuer) }},
		{name: "IDT-06 wrong audience", mutate: func(c map[string]any) { c["aud"] = "other-client" }},
		{name: "IDT-06 audience missing", mutate: func(c map[string]any) { delete(c, "aud") }},
		{name: "IDT-06 audience array with an untrusted audience", mutate: func(c map[string]any) {
			c["aud"] = []string{"authgate", "attacker-client"}
		}},
		{name: "IDT-07 azp of another client", mutate: func(c map[string]any) { c["azp"] = "attacker-client" }},
		{name: "IDT-08 expired", mutate: func(c map[string]any) { c["exp"] = now.Add(-5 * time.Minute).Unix() }},
		{name: "IDT-08 exp missing", mutate: func(c map[string]any) { delete(c, "exp") }},
		{name: "IDT-08 nbf in one hour", mutate: func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }},
		{name: "IDT-08 iat in one hour", mutate: func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }},
		{name: "IDT-09 nonce missing", mutate: func(c map[string]any) { delete(c, "nonce") }},
		{name: "IDT-09 wrong nonce", mutate: func(c map[string]any) { c["nonce"] = "not-the-flow-nonce" }},
		{name: "IDT-09 nonce of an earlier login", mutate: func(c map[string]any) { c["nonce"] = oldNonce }},
		{name: "IDT-01 alg none", alg: "none"},
		{name: "IDT-02 HS256 keyed with the public key", alg: "HS256"},
		{name: "IDT-03/04 signed with a key not in the JWKS", alg: "RS256-other"},
		{name: "IDT-10 sub missing", mutate: func(c map[string]any) { delete(c, "sub") }},
		{name: "IDT-10 sub empty", mutate: func(c map[string]any) { c["sub"] = "" }},
		{name: "IDT-10 sub longer than 255", mutate: func(c map[string]any) { c["sub"] = strings.Repeat("s", 256) }},
		{name: "IDT-10 sub with a control character", mutate: func(c map[string]any) { c["sub"] = "crafted\x00sub" }},
		{name: "IDT-12 logout token as ID token", mutate: func(c map[string]any) {
			delete(c, "nonce")
			c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
			c["sid"] = "idp-session"
		}},
		{name: "control: valid token", wantOK: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alg := tt.alg
			if alg == "" {
				alg = "RS256"
			}
			sub := "crafted-subject-" + strconv.Itoa(i)
			op.TokenFunc = func(url.Values) (map[string]any, string) {
				c := op.DefaultClaims()
				c["sub"] = sub
				if tt.mutate != nil {
					tt.mutate(c)
				}
				return c, alg
			}
			c := g.Client()
			sessionsBefore, usersBefore, tokensBefore := liveSessions(t, g), userRows(t, g), len(op.TokenRequests())
			resp, body := craftedLogin(t, g, c)
			if n := len(op.TokenRequests()) - tokensBefore; n != 1 {
				t.Fatalf("token endpoint called %d times, want 1", n)
			}
			if tt.wantOK {
				if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/home" || setSession(resp) == "" {
					t.Fatalf("valid token: %d %q session %v (%s)", resp.StatusCode, resp.Header.Get("Location"), setSession(resp) != "", body)
				}
				if userRows(t, g) != usersBefore+1 || liveSessions(t, g) != sessionsBefore+1 {
					t.Errorf("valid token: users %d -> %d, sessions %d -> %d", usersBefore, userRows(t, g), sessionsBefore, liveSessions(t, g))
				}
				return
			}
			var got struct{ Error string }
			_ = json.Unmarshal([]byte(body), &got)
			if resp.StatusCode != http.StatusUnauthorized || got.Error != "id_token_rejected" {
				t.Errorf("status %d error %q, want 401 id_token_rejected (%s)", resp.StatusCode, got.Error, body)
			}
			if setSession(resp) != "" {
				t.Error("a session cookie was set")
			}
			if n := liveSessions(t, g); n != sessionsBefore {
				t.Errorf("live sessions %d -> %d", sessionsBefore, n)
			}
			if n := userRows(t, g); n != usersBefore {
				t.Errorf("user rows %d -> %d: the forged identity was provisioned", usersBefore, n)
			}
		})
	}
}

// TestTokenEndpointRefusal covers FLOW-19 (IdP side): a token endpoint that refuses the code
// ends the login with 401 and no session or user.
func TestTokenEndpointRefusal(t *testing.T) {
	op := fixture.StartCraftedOP(t)
	g := fixture.StartGateway(t, fixture.GatewayOptions{Issuer: op.Issuer, ClientSecret: "crafted-op-accepts-any-secret"})
	op.TokenFunc = func(url.Values) (map[string]any, string) { return nil, "" }
	resp, body := craftedLogin(t, g, g.Client())
	if resp.StatusCode != http.StatusUnauthorized || setSession(resp) != "" || strings.Contains(body, "invalid_grant") {
		t.Errorf("refused code: status %d, session set %v, body %s", resp.StatusCode, setSession(resp) != "", body)
	}
	if liveSessions(t, g) != 0 || userRows(t, g) != 0 {
		t.Errorf("sessions %d, users %d after a refused code", liveSessions(t, g), userRows(t, g))
	}
}
