// Package e2e tests the gateway end to end: the real gateway handler wired to a real Redis,
// a real user store, the devidp OIDC provider over HTTP and an echo upstream.
package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
)

// login logs a fresh client in and returns it.
func login(t *testing.T, g *fixture.Gateway, user string) *http.Client {
	t.Helper()
	c := g.Client()
	resp := g.Login(t, c, "/", user, user)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: status %d", user, resp.StatusCode)
	}
	return c
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == fixture.CookieName && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header.Values("Set-Cookie"))
	return nil
}

func TestLoginProvisionsUserAndProxiesIdentity(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	c := g.Client()
	resp := g.Login(t, c, "/dashboard/home?tab=1", "alice", "alice")
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard/home?tab=1" {
		t.Fatalf("callback answered %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := sessionCookie(t, resp)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
		t.Errorf("cookie attributes: HttpOnly=%v SameSite=%v Path=%q", ck.HttpOnly, ck.SameSite, ck.Path)
	}

	u, err := g.Users.FindByEmail(context.Background(), "alice@example.com", 10)
	if err != nil || len(u) != 1 {
		t.Fatalf("user not provisioned: %v %v", u, err)
	}

	req, _ := http.NewRequest(http.MethodGet, g.URL+"/dashboard/home", nil)
	req.AddCookie(&http.Cookie{Name: "app_pref", Value: "dark"})
	req.Header.Set("X-Auth-User-Id", "spoofed")
	r2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusOK {
		t.Fatalf("proxied request: %d", r2.StatusCode)
	}
	got, _ := g.Echo.Last()
	want := map[string]string{
		"X-Auth-User-Id": u[0].ID, "X-Auth-Subject": "user-alice", "X-Auth-Email": "alice@example.com",
		"X-Auth-Name": "Alice Example", "X-Auth-Roles": "super_admin", "X-Auth-Groups": "admins",
	}
	for k, v := range want {
		if vals := got.Header.Values(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("upstream %s = %q, want %q", k, vals, v)
		}
	}
	cookies := strings.Join(got.Header.Values("Cookie"), "; ")
	if strings.Contains(cookies, fixture.CookieName+"=") || strings.Contains(cookies, ck.Value) {
		t.Errorf("session cookie reached the upstream: %q", cookies)
	}
	if !strings.Contains(cookies, "app_pref=dark") {
		t.Errorf("app cookie lost: %q", cookies)
	}

	// /.auth/me tells the SPA who is logged in, and never a token.
	resp3, body := get(t, c, g.URL+"/.auth/me", nil)
	if resp3.StatusCode != http.StatusOK {
		t.Fatalf("/.auth/me: %d", resp3.StatusCode)
	}
	var me map[string]any
	if err := json.Unmarshal([]byte(body), &me); err != nil {
		t.Fatal(err)
	}
	if me["user_id"] != u[0].ID || me["sub"] != "user-alice" || me["email"] != "alice@example.com" {
		t.Errorf("/.auth/me = %s", body)
	}
	for _, k := range []string{"access_token", "id_token", "refresh_token"} {
		if strings.Contains(body, k) {
			t.Errorf("/.auth/me leaks %s: %s", k, body)
		}
	}
}

func TestUnauthenticatedRequests(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	c := g.Client()
	tests := []struct {
		name       string
		path       string
		hdr        map[string]string
		wantStatus int
		wantLoc    string
	}{
		{name: "navigation goes to login", path: "/dashboard?x=1", hdr: map[string]string{"Accept": "text/html"},
			wantStatus: http.StatusFound, wantLoc: "/.auth/login?return_to=%2Fdashboard%3Fx%3D1"},
		{name: "sec-fetch navigate", path: "/a", hdr: map[string]string{"Sec-Fetch-Mode": "navigate"},
			wantStatus: http.StatusFound, wantLoc: "/.auth/login?return_to=%2Fa"},
		{name: "api call gets 401", path: "/api/items", hdr: map[string]string{"Accept": "application/json"}, wantStatus: http.StatusUnauthorized},
		{name: "admin api call gets 401", path: "/admin/users", wantStatus: http.StatusUnauthorized},
		{name: "me without session", path: "/.auth/me", wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, g.URL+tt.path, tt.hdr)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantLoc != "" && resp.Header.Get("Location") != tt.wantLoc {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), tt.wantLoc)
			}
			if tt.wantStatus == http.StatusUnauthorized && !strings.Contains(body, `"error":"unauthenticated"`) {
				t.Errorf("401 body %q", body)
			}
		})
	}
	if n := g.Echo.Count(); n != 0 {
		t.Errorf("upstream received %d unauthenticated requests", n)
	}
}

func TestRolePolicy(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	alice, bob := login(t, g, "alice"), login(t, g, "bob")
	if resp, _ := get(t, bob, g.URL+"/admin/users", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob on /admin/: %d, want 403", resp.StatusCode)
	}
	if g.Echo.Count() != 0 {
		t.Fatalf("denied request reached the upstream")
	}
	if resp, _ := get(t, alice, g.URL+"/admin/users", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("alice on /admin/: %d, want 200", resp.StatusCode)
	}
}

func TestLogout(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	c := login(t, g, "bob")
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/.auth/logout", nil)
	req.Header.Set("Origin", g.URL)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, g.OP.Issuer) ||
		!strings.Contains(loc, "id_token_hint=") || !strings.Contains(loc, "post_logout_redirect_uri=") {
		t.Fatalf("logout: %d %q", resp.StatusCode, loc)
	}
	if r, _ := get(t, c, g.URL+"/.auth/me", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout /.auth/me = %d", r.StatusCode)
	}
	list, err := g.Sessions.List(context.Background(), 10)
	if err != nil || len(list) != 0 {
		t.Errorf("sessions left after logout: %d %v", len(list), err)
	}
	_ = session.ErrNotFound
}

// TestDisabledUser: a disabled user cannot log in (403, no session), and the audit trail says so.
func TestDisabledUser(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	login(t, g, "bob") // provisions bob
	ctx := context.Background()
	u, err := g.Users.FindByEmail(ctx, "bob@example.com", 1)
	if err != nil || len(u) != 1 {
		t.Fatalf("bob not provisioned: %v", err)
	}
	if _, err := g.Users.SetDisabled(ctx, u[0].ID, true); err != nil {
		t.Fatal(err)
	}
	before, _ := g.Sessions.ListSubject(ctx, u[0].Issuer, u[0].Subject)
	c := g.Client()
	resp := g.Login(t, c, "/", "bob", "bob")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("disabled user login: %d, want 403", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == fixture.CookieName && ck.Value != "" {
			t.Error("a session cookie was set for a disabled user")
		}
	}
	after, _ := g.Sessions.ListSubject(ctx, u[0].Issuer, u[0].Subject)
	if len(after) != len(before) {
		t.Errorf("sessions of the disabled user: %d before, %d after the refused login", len(before), len(after))
	}
	found := false
	for deadline := time.Now().Add(3 * time.Second); !found && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		events, _ := g.Users.AuditEvents(ctx, u[0].ID, 20)
		for _, e := range events {
			found = found || (e.Kind == "login_failure" && e.Reason == "disabled")
		}
	}
	if !found {
		t.Error("no login_failure/disabled audit event")
	}
}
