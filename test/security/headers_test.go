package security

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/upstream"
)

// TestIdentityHeaderSpoofing covers HDR-01..HDR-08, HDR-12 and HDR-14: anonymously on a public
// route and as bob on an authenticated one, no client-supplied identity or forwarding header
// reaches the upstream in any spelling, and bob's identity headers arrive exactly once each.
func TestIdentityHeaderSpoofing(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	_, bobCookie := loginAs(t, g, "bob")
	bobIdentity := map[string]string{
		"X-Auth-User-Id": userID(t, g, "bob@example.com"), "X-Auth-Subject": "user-bob",
		"X-Auth-Email": "bob@example.com", "X-Auth-Name": "Bob Example",
		"X-Auth-Roles": "viewer", "X-Auth-Groups": "staff",
	}
	gwHost := strings.TrimPrefix(g.URL, "http://")
	tests := []struct {
		name      string
		headers   []string
		wantExact map[string]string // headers the upstream must get exactly once with this value
	}{
		{name: "HDR-01 canonical names", headers: []string{
			"X-Auth-User-Id: SPOOF-1", "X-Auth-Roles: super_admin", "X-Auth-Email: SPOOF@evil.example",
			"X-Auth-Groups: admins", "X-Auth-Subject: SPOOF-sub", "X-Auth-Name: SPOOF"}},
		{name: "lower-case names", headers: []string{"x-auth-email: SPOOF@evil.example", "x-auth-roles: super_admin"}},
		{name: "HDR-03 underscore names", headers: []string{
			"X_Auth_User_Id: SPOOF-2", "x_auth_roles: super_admin", "X-Auth_Roles: super_admin",
			"X_AUTH_EMAIL: SPOOF@evil.example", "x-auth_groups: admins"}},
		{name: "HDR-03 underscore forwarding names", headers: []string{"X_Forwarded_For: 10.9.9.9", "X_Forwarded_Host: evil.com"},
			wantExact: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": gwHost}},
		{name: "HDR-04 Connection names identity headers", headers: []string{
			"Connection: close, X-Auth-User-Id, X-Auth-Roles, X-Auth-Email", "X-Auth-User-Id: SPOOF-3", "X-Auth-Roles: super_admin"}},
		{name: "HDR-05 Connection names forwarding headers", headers: []string{"Connection: close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host"},
			wantExact: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": gwHost}},
		{name: "HDR-06 forwarding spoof", headers: []string{
			"X-Forwarded-For: 10.9.9.9", "X-Real-IP: 10.9.9.9", "Forwarded: for=10.9.9.9;host=evil.com;proto=https",
			"True-Client-IP: 10.9.9.9", "X-Client-IP: 10.9.9.9"},
			wantExact: map[string]string{"X-Forwarded-For": "127.0.0.1"}},
		{name: "HDR-07 host spoof", headers: []string{
			"X-Forwarded-Host: evil.com", "X-Forwarded-Proto: https", "X-Original-Host: evil.com", "X-Host: evil.com"},
			wantExact: map[string]string{"X-Forwarded-Host": gwHost, "X-Forwarded-Proto": "http"}},
		{name: "HDR-08 rewrite headers", headers: []string{
			"X-Original-URL: /admin/users-SPOOF", "X-Rewrite-URL: /admin/users-SPOOF", "X-Original-URI: /admin/users-SPOOF",
			"X-Forwarded-Uri: /admin/users-SPOOF", "X-Forwarded-Prefix: /admin-SPOOF",
			"X-HTTP-Method-Override: DELETE-SPOOF", "X-HTTP-Method: DELETE-SPOOF", "X-Method-Override: DELETE-SPOOF"}},
		{name: "HDR-14 duplicates in three spellings", headers: []string{
			"X-Auth-User-Id: SPOOF-a", "x-auth-user-id: SPOOF-b", "X-AUTH-USER-ID: SPOOF-c"}},
	}
	routes := []struct {
		name     string
		target   string
		cookie   string
		identity map[string]string // nil: no X-Auth-* header at all
	}{
		{name: "anonymous public", target: "/public/x"},
		{name: "bob authenticated", target: "/dashboard", cookie: bobCookie, identity: bobIdentity},
	}
	for _, rt := range routes {
		for _, tt := range tests {
			t.Run(rt.name+"/"+tt.name, func(t *testing.T) {
				hdr := append([]string{}, tt.headers...)
				if rt.cookie != "" {
					hdr = append(hdr, rt.cookie)
				}
				before := g.Echo.Count()
				resp, body := sendRaw(t, g.URL, rawReq{target: rt.target, headers: hdr})
				got := g.Echo.All()[before:]
				if resp.StatusCode != http.StatusOK || len(got) != 1 {
					t.Fatalf("status %d with %d upstream request(s), want 200 and one (%s)", resp.StatusCode, len(got), body)
				}
				checkUpstreamHeaders(t, got[0].Header, rt.identity, tt.wantExact)
			})
		}
	}
}

// checkUpstreamHeaders asserts the identity family is exactly identity (none when nil), that
// every header in exact arrived once with that value, and that no spoof marker got through.
func checkUpstreamHeaders(t *testing.T, h http.Header, identity, exact map[string]string) {
	t.Helper()
	// The markers never occur in a value the gateway sets for bob (or anonymously); seeing one
	// at the upstream means a client-supplied header got through.
	spoofMarkers := []string{"SPOOF", "super_admin", "admins", "evil"}
	for name, vals := range h {
		folded := foldName(name)
		if strings.HasPrefix(folded, "x-auth-") {
			if want, ok := identity[http.CanonicalHeaderKey(name)]; !ok || name != http.CanonicalHeaderKey(name) {
				t.Errorf("upstream got unexpected identity header %q: %q", name, vals)
			} else if len(vals) != 1 || vals[0] != want {
				t.Errorf("upstream %s = %q, want exactly [%q]", name, vals, want)
			}
		}
		for _, v := range vals {
			for _, m := range spoofMarkers {
				if strings.Contains(v, m) {
					t.Errorf("spoofed value reached the upstream: %s: %q", name, v)
				}
			}
		}
		for _, dropped := range []string{"forwarded", "x-real-ip", "true-client-ip", "x-client-ip", "x-original-host",
			"x-host", "x-original-url", "x-rewrite-url", "x-original-uri", "x-forwarded-uri", "x-forwarded-prefix",
			"x-http-method-override", "x-http-method", "x-method-override"} {
			if folded == dropped {
				t.Errorf("upstream got client header %s: %q", name, vals)
			}
		}
	}
	for name, want := range identity {
		if vals := h.Values(name); len(vals) != 1 || vals[0] != want {
			t.Errorf("upstream %s = %q, want exactly [%q]", name, vals, want)
		}
	}
	for name, want := range exact {
		if vals := h.Values(name); len(vals) != 1 || vals[0] != want {
			t.Errorf("upstream %s = %q, want exactly [%q]", name, vals, want)
		}
	}
}

// TestGatewayCookiesNotForwarded covers HDR-10: the session and login-flow cookies
// never reach the upstream, the app's cookies do, byte for byte.
func TestGatewayCookiesNotForwarded(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	_, bobCookie := loginAs(t, g, "bob")
	session := strings.TrimPrefix(bobCookie, "Cookie: ")
	resp, _ := sendRaw(t, g.URL, rawReq{target: "/dashboard",
		headers: []string{"Cookie: theme=dark; " + session + "; " + fixture.CookieName + "-tx=abc; lang=en"}})
	got, ok := g.Echo.Last()
	if resp.StatusCode != http.StatusOK || !ok {
		t.Fatalf("status %d, forwarded %v", resp.StatusCode, ok)
	}
	if c := got.Header.Values("Cookie"); len(c) != 1 || c[0] != "theme=dark; lang=en" {
		t.Errorf("upstream Cookie %q, want [\"theme=dark; lang=en\"]", c)
	}
}

// TestClientAuthorizationReplaced covers HDR-09: on a pass_access_token route the client's own
// Authorization header is replaced by the session's access token; anonymous bearer requests are
// not authenticated by it.
func TestClientAuthorizationReplaced(t *testing.T) {
	routes := []gateway.Route{
		{Route: upstream.Route{Name: "tok", PathPrefix: "/tok/"}, PassAccessToken: true},
		{Route: upstream.Route{Name: "app", PathPrefix: "/"}},
	}
	g := fixture.StartGateway(t, fixture.GatewayOptions{Routes: routes})
	_, bobCookie := loginAs(t, g, "bob")
	const attacker = "Bearer attacker.jwt.here"

	resp, _ := sendRaw(t, g.URL, rawReq{target: "/tok/me", headers: []string{"Authorization: " + attacker, bobCookie}})
	got, ok := g.Echo.Last()
	if resp.StatusCode != http.StatusOK || !ok {
		t.Fatalf("status %d, forwarded %v", resp.StatusCode, ok)
	}
	if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] == attacker || !strings.HasPrefix(a[0], "Bearer ") || len(a[0]) < 20 {
		t.Errorf("upstream Authorization %q, want exactly the session's bearer token", a)
	}

	before := g.Echo.Count()
	resp, _ = sendRaw(t, g.URL, rawReq{target: "/tok/me", headers: []string{"Authorization: " + attacker}})
	if resp.StatusCode != http.StatusUnauthorized || g.Echo.Count() != before {
		t.Errorf("anonymous bearer request: status %d, forwarded %v; want 401, not forwarded", resp.StatusCode, g.Echo.Count() != before)
	}
}
