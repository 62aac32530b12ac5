package security

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
)

// onlySession returns the one session in g's store, tokens included.
func onlySession(t *testing.T, g *fixture.Gateway) *session.Record {
	t.Helper()
	ctx := context.Background()
	recs, err := g.Sessions.List(ctx, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("sessions in the store: %d, %v; want exactly 1", len(recs), err)
	}
	rec, err := g.Sessions.Lookup(ctx, recs[0].Handle)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestSessionKeepsOnlyTokensItUses: a session keeps the access and refresh tokens only when a
// route passes the access token, and the ID token only when the IdP has an
// end_session_endpoint (its only use is id_token_hint), so a copy of Redis holds no
// credential the gateway will never send.
func TestSessionKeepsOnlyTokensItUses(t *testing.T) {
	withTokenRoute := []gateway.Route{
		{Route: upstream.Route{Name: "tok", PathPrefix: "/tok/"}, PassAccessToken: true},
		{Route: upstream.Route{Name: "app", PathPrefix: "/"}},
	}
	tests := []struct {
		name                  string
		routes                []gateway.Route
		wantAPITokens, wantID bool
	}{
		{name: "no route passes the access token", routes: nil, wantAPITokens: false, wantID: true},
		{name: "a route passes the access token", routes: withTokenRoute, wantAPITokens: true, wantID: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := fixture.StartGateway(t, fixture.GatewayOptions{Routes: tc.routes})
			loginAs(t, g, "bob")
			rec := onlySession(t, g)
			if got := rec.AccessToken != "" && rec.RefreshToken != "" && !rec.TokenExpiry.IsZero(); got != tc.wantAPITokens {
				t.Errorf("access token kept %v, refresh token kept %v, expiry %v; want kept: %v",
					rec.AccessToken != "", rec.RefreshToken != "", rec.TokenExpiry, tc.wantAPITokens)
			}
			if !tc.wantAPITokens && (rec.AccessToken != "" || rec.RefreshToken != "" || !rec.TokenExpiry.IsZero()) {
				t.Error("a token nothing uses was kept")
			}
			if (rec.IDToken != "") != tc.wantID {
				t.Errorf("ID token kept: %v, want %v (devidp has an end_session_endpoint)", rec.IDToken != "", tc.wantID)
			}
		})
	}

	t.Run("IdP without end_session_endpoint", func(t *testing.T) {
		op := fixture.StartCraftedOP(t) // its discovery has no end_session_endpoint
		g := fixture.StartGateway(t, fixture.GatewayOptions{Issuer: op.Issuer, ClientSecret: "crafted-op-accepts-any-secret",
			Routes: withTokenRoute})
		if resp, body := craftedLogin(t, g, g.Client()); resp.StatusCode != http.StatusFound {
			t.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		rec := onlySession(t, g)
		if rec.IDToken != "" {
			t.Error("the ID token was kept although no logout can send it")
		}
		if !strings.HasPrefix(rec.AccessToken, "crafted-access-") || !strings.HasPrefix(rec.RefreshToken, "crafted-refresh-") {
			t.Error("the access and refresh tokens of a pass_access_token deployment were not kept")
		}
	})
}

// TestTokenlessSessionOnTokenRouteLogsInAgain: a session made while no route passed the access
// token (here: by an instance of the same deployment without such a route, as after a config
// change) is not forwarded to a pass_access_token route without a token; it is asked to log in
// (401 for an API call, 302 to the login for a navigation), and the new login's session
// carries the token upstream.
func TestTokenlessSessionOnTokenRouteLogsInAgain(t *testing.T) {
	lean := fixture.StartGateway(t, fixture.GatewayOptions{})
	_, cookie := loginAs(t, lean, "bob")
	if rec := onlySession(t, lean); rec.AccessToken != "" {
		t.Fatal("precondition: the session of a deployment without pass_access_token kept an access token")
	}
	g := fixture.StartGateway(t, fixture.GatewayOptions{Sessions: lean.Sessions, Routes: []gateway.Route{
		{Route: upstream.Route{Name: "tok", PathPrefix: "/tok/"}, PassAccessToken: true},
		{Route: upstream.Route{Name: "app", PathPrefix: "/"}},
	}})

	resp, _ := sendRaw(t, g.URL, rawReq{target: "/tok/data", headers: []string{cookie, "Accept: application/json"}})
	if resp.StatusCode != http.StatusUnauthorized || g.Echo.Count() != 0 {
		t.Errorf("API call: status %d, forwarded %d; want 401, nothing forwarded", resp.StatusCode, g.Echo.Count())
	}
	resp, _ = sendRaw(t, g.URL, rawReq{target: "/tok/page", headers: []string{cookie, "Accept: text/html"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/.auth/login?return_to=%2Ftok%2Fpage") {
		t.Errorf("navigation: status %d, Location %q; want 302 to the login", resp.StatusCode, loc)
	}
	resp, _ = sendRaw(t, g.URL, rawReq{target: "/other", headers: []string{cookie}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a route without pass_access_token: status %d, want 200 (the session still works there)", resp.StatusCode)
	}

	c := g.Client()
	if resp := g.Login(t, c, "/tok/data", "bob", "bob"); resp.StatusCode != http.StatusFound {
		t.Fatalf("new login: status %d", resp.StatusCode)
	}
	resp, _ = get(t, c, g.URL+"/tok/data")
	got, ok := g.Echo.Last()
	if resp.StatusCode != http.StatusOK || !ok || !strings.HasPrefix(got.Header.Get("Authorization"), "Bearer ") {
		t.Errorf("after the new login: status %d, upstream Authorization %q", resp.StatusCode, got.Header.Get("Authorization"))
	}
}
