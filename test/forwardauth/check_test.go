package forwardauth

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/test/fixture"
)

// sessionCookie logs user in through the gateway and the devidp and returns the session
// cookie as a Cookie header value.
func sessionCookie(t *testing.T, g *fixture.Gateway, user string) string {
	t.Helper()
	c := g.Client()
	resp := g.Login(t, c, "/", user, user)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: status %d", user, resp.StatusCode)
	}
	u, _ := url.Parse(g.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == fixture.CookieName {
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatalf("no session cookie after logging in as %s", user)
	return ""
}

func hasIdentity(h http.Header) bool {
	for _, n := range identityHeaders() {
		if _, ok := h[n]; ok {
			return true
		}
	}
	return false
}

func TestCheckDecisions(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	alice, bob := sessionCookie(t, g, "alice"), sessionCookie(t, g, "bob")
	fwd := func(uri, method string, extra ...string) map[string]string {
		h := map[string]string{"X-Forwarded-Uri": uri, "X-Forwarded-Method": method, "Accept": "application/json"}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	nginx := func(uri string, extra ...string) map[string]string {
		h := map[string]string{"X-Original-URI": uri, "X-Original-Method": "GET"}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	tests := []struct {
		name   string
		hdr    map[string]string
		cookie string
		want   int
	}{
		{name: "alice on admin", hdr: fwd("/admin/users", "GET"), cookie: alice, want: http.StatusOK},
		{name: "alice, nginx headers", hdr: nginx("/admin/users?x=1"), cookie: alice, want: http.StatusOK},
		{name: "bob on admin", hdr: fwd("/admin/users", "GET"), cookie: bob, want: http.StatusForbidden},
		{name: "bob on admin in upper case", hdr: fwd("/ADMIN/users", "GET"), cookie: bob, want: http.StatusForbidden},
		{name: "bob via dot segments", hdr: nginx("/public/../admin/users"), cookie: bob, want: http.StatusForbidden},
		{name: "bob on the app", hdr: fwd("/dashboard", "GET"), cookie: bob, want: http.StatusOK},
		{name: "anonymous on admin", hdr: fwd("/admin/users", "GET"), want: http.StatusUnauthorized},
		{name: "anonymous, probe user agent", hdr: nginx("/admin/users", "User-Agent", "kube-probe/1.30"), want: http.StatusUnauthorized},
		{name: "anonymous, query cannot widen", hdr: fwd("/admin/users?allowed_emails=*&allowed_groups=", "GET"), want: http.StatusUnauthorized},
		{name: "forged session cookie", hdr: fwd("/dashboard", "GET"), cookie: fixture.CookieName + "=%%%", want: http.StatusUnauthorized},
		{name: "anonymous on public", hdr: fwd("/public/x", "GET", "X-Auth-User-Id", "spoofed"), want: http.StatusOK},
		{name: "no original URI", hdr: map[string]string{"X-Forwarded-Method": "GET"}, cookie: alice, want: http.StatusForbidden},
		{name: "empty original URI", hdr: nginx(""), cookie: alice, want: http.StatusForbidden},
		{name: "no original method is judged as GET", hdr: map[string]string{"X-Forwarded-Uri": "/dashboard"}, cookie: alice, want: http.StatusOK},
		{name: "no original method, no session", hdr: map[string]string{"X-Forwarded-Uri": "/dashboard"}, want: http.StatusUnauthorized},
		{name: "method in lower case", hdr: fwd("/public/x", "get"), want: http.StatusForbidden},
		{name: "bad escape", hdr: nginx("/api/%zz"), cookie: alice, want: http.StatusForbidden},
		{name: "absolute URL", hdr: nginx("https://gw.example.com/%"), cookie: alice, want: http.StatusForbidden},
		{name: "absolute URL of public", hdr: nginx("http://evil.example/public/x"), want: http.StatusForbidden},
		{name: "encoded slash", hdr: nginx("/public/..%2fadmin/users"), cookie: alice, want: http.StatusForbidden},
		{name: "client X-Forwarded-Uri next to nginx X-Original-URI", hdr: nginx("/admin/users", "X-Forwarded-Uri", "/public/x"), want: http.StatusForbidden},
		{name: "X-Forwarded-Method contradicts X-Original-Method", hdr: nginx("/public/x", "X-Forwarded-Method", "DELETE"), want: http.StatusForbidden},
		{name: "cross-site POST", hdr: fwd("/dashboard", "POST", "Origin", "https://evil.example"), cookie: alice, want: http.StatusForbidden},
		{name: "same-origin POST", hdr: fwd("/dashboard", "POST", "Origin", g.URL), cookie: alice, want: http.StatusOK},
		{name: "POST to csrf header route without X-CSRF", hdr: fwd("/api/x", "POST"), cookie: alice, want: http.StatusForbidden},
		{name: "POST to csrf header route with X-CSRF", hdr: fwd("/api/x", "POST", "X-CSRF", "1"), cookie: alice, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cookie != "" {
				tt.hdr["Cookie"] = tt.cookie
			}
			resp, body := do(t, http.MethodGet, g.URL+"/.auth/check", tt.hdr)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			wantIdentity := tt.want == http.StatusOK && tt.cookie != ""
			if hasIdentity(resp.Header) != wantIdentity {
				t.Fatalf("identity headers on the answer: %v (want them: %v)", resp.Header, wantIdentity)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("a forward-auth answer must not be cached")
			}
		})
	}
	resp, _ := do(t, http.MethodGet, g.URL+"/.auth/check", map[string]string{"X-Forwarded-Uri": "/admin/users",
		"X-Forwarded-Method": "GET", "Cookie": alice})
	if resp.Header.Get("X-Auth-Email") != "alice@example.com" || resp.Header.Get("X-Auth-User-Id") == "" ||
		!strings.Contains(resp.Header.Get("X-Auth-Roles"), "super_admin") || resp.Header.Get("Authorization") != "" {
		t.Fatalf("identity headers for alice: %v", resp.Header)
	}
}

func TestCheckRepeatedHeaderIsDenied(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{MemorySessions: true})
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/.auth/check", nil)
	req.Header["X-Original-Uri"] = []string{"/public/x", "/public/y"}
	req.Header.Set("X-Original-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("repeated X-Original-URI: %d, want 403", resp.StatusCode)
	}
}

// TestCheckRedirectModes: Traefik (?redirect=1) and Envoy (/.auth/check/<path>) hand the answer
// to the browser, so navigations get the login redirect there; nginx gets 401 (and /.auth/start).
func TestCheckRedirectModes(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	alice, bob := sessionCookie(t, g, "alice"), sessionCookie(t, g, "bob")
	const wantLogin = "/.auth/login?return_to=%2Fdash%3Ftab%3D1%26x%3D2"
	html := "text/html,application/xhtml+xml"
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		want               int
		wantLocation       string
	}{
		{name: "nginx form: navigation gets 401", method: "GET", path: "/.auth/check",
			hdr: map[string]string{"X-Original-URI": "/dash?tab=1&x=2", "X-Original-Method": "GET", "Accept": html}, want: 401},
		{name: "traefik form: navigation redirected", method: "GET", path: "/.auth/check?redirect=1",
			hdr: map[string]string{"X-Forwarded-Uri": "/dash?tab=1&x=2", "X-Forwarded-Method": "GET", "Accept": html}, want: 302, wantLocation: wantLogin},
		{name: "traefik form: API call gets 401", method: "GET", path: "/.auth/check?redirect=1",
			hdr: map[string]string{"X-Forwarded-Uri": "/dash", "X-Forwarded-Method": "GET", "Accept": "application/json"}, want: 401},
		{name: "traefik form: POST navigation gets 401", method: "GET", path: "/.auth/check?redirect=1",
			hdr: map[string]string{"X-Forwarded-Uri": "/dash", "X-Forwarded-Method": "POST", "Accept": html}, want: 401},
		{name: "envoy form: navigation redirected", method: "GET", path: "/.auth/check/dash?tab=1&x=2",
			hdr: map[string]string{"Accept": html}, want: 302, wantLocation: wantLogin},
		{name: "envoy form: alice on admin", method: "GET", path: "/.auth/check/admin/users", hdr: map[string]string{"Cookie": alice}, want: 200},
		{name: "envoy form: bob on admin", method: "GET", path: "/.auth/check/admin/users", hdr: map[string]string{"Cookie": bob}, want: 403},
		{name: "envoy form: bob via dot segments", method: "GET", path: "/.auth/check/public/%2e%2e/admin/users", hdr: map[string]string{"Cookie": bob}, want: 403},
		{name: "envoy form: dot segments above the prefix", method: "GET", path: "/.auth/check/%2e%2e/check/admin", hdr: map[string]string{"Cookie": alice}, want: 403},
		{name: "envoy form: POST with X-CSRF", method: "POST", path: "/.auth/check/api/x", hdr: map[string]string{"Cookie": alice, "X-CSRF": "1"}, want: 200},
		{name: "envoy form: POST without X-CSRF", method: "POST", path: "/.auth/check/api/x", hdr: map[string]string{"Cookie": alice}, want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, g.URL+tt.path, tt.hdr)
			if resp.StatusCode != tt.want || resp.Header.Get("Location") != tt.wantLocation {
				t.Fatalf("got %d Location %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("Location"), tt.want, tt.wantLocation, body)
			}
		})
	}
}

func TestStart(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{MemorySessions: true})
	html := "text/html"
	tests := []struct {
		name         string
		path         string
		hdr          map[string]string
		want         int
		wantLocation string
	}{
		{name: "navigation with X-Original-URI", path: "/.auth/start", hdr: map[string]string{"X-Original-URI": "/dash?tab=1&x=2", "Accept": html},
			want: 302, wantLocation: "/.auth/login?return_to=%2Fdash%3Ftab%3D1%26x%3D2"},
		{name: "navigation with rd", path: "/.auth/start?rd=%2Freports%2F7", hdr: map[string]string{"Accept": html},
			want: 302, wantLocation: "/.auth/login?return_to=%2Freports%2F7"},
		{name: "foreign target replaced", path: "/.auth/start?rd=//evil.example/x", hdr: map[string]string{"Accept": html},
			want: 302, wantLocation: "/.auth/login?return_to=%2F"},
		{name: "foreign header target replaced", path: "/.auth/start", hdr: map[string]string{"X-Original-URI": "https://evil.example/", "Accept": html},
			want: 302, wantLocation: "/.auth/login?return_to=%2F"},
		{name: "form POST", path: "/.auth/start", hdr: map[string]string{"X-Original-URI": "/dash", "X-Original-Method": "POST", "Accept": html}, want: 401},
		{name: "API call", path: "/.auth/start", hdr: map[string]string{"X-Original-URI": "/api/x", "Accept": "application/json"}, want: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, g.URL+tt.path, tt.hdr)
			if resp.StatusCode != tt.want || resp.Header.Get("Location") != tt.wantLocation {
				t.Fatalf("got %d Location %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("Location"), tt.want, tt.wantLocation, body)
			}
		})
	}
}

func TestCheckOnlyForTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		want    int
	}{
		{name: "no trusted proxies configured", want: http.StatusOK},
		{name: "caller is a trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, want: http.StatusOK},
		{name: "caller is not a trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := fixture.StartGateway(t, fixture.GatewayOptions{MemorySessions: true,
				Mutate: func(o *gateway.Options) { o.TrustedProxies = tt.trusted }})
			resp, body := do(t, http.MethodGet, g.URL+"/.auth/check", map[string]string{"X-Forwarded-Uri": "/public/x", "X-Forwarded-Method": "GET"})
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
		})
	}
}

func TestCheckPreflight(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{MemorySessions: true, AllowedOrigins: []string{"https://spa.example.com"}})
	tests := []struct {
		name, origin, method string
		want                 int
	}{
		{name: "allowed origin", origin: "https://spa.example.com", method: "POST", want: http.StatusOK},
		{name: "other origin", origin: "https://evil.example", method: "POST", want: http.StatusForbidden},
		{name: "look-alike origin", origin: "https://spa.example.com.evil.example", method: "POST", want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, g.URL+"/.auth/check", map[string]string{"X-Forwarded-Uri": "/api/x",
				"X-Forwarded-Method": "OPTIONS", "Origin": tt.origin, "Access-Control-Request-Method": tt.method})
			if resp.StatusCode != tt.want || hasIdentity(resp.Header) {
				t.Fatalf("status %d (identity headers: %v), want %d: %s", resp.StatusCode, hasIdentity(resp.Header), tt.want, body)
			}
		})
	}
}
