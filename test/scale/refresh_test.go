package scale

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
	"github.com/authgate/authgate/users"
)

// TestOneRefreshForConcurrentRequests: 50 requests of one session whose access token has
// expired, spread over two instances, cause exactly one refresh at the IdP (devidp rotates
// refresh tokens and counts reuse), and every one of them reaches the upstream with the new
// access token.
func TestOneRefreshForConcurrentRequests(t *testing.T) {
	op := fixture.StartOP(t)
	c := startCluster(t, clusterOptions{n: 2, op: op, refreshSkew: 100 * time.Millisecond})
	client, rec := c.Login(t, "alice")

	// The gateways' clock stops at the old token's expiry: every request finds it expired. The
	// new token's expiry (real time at the refresh + expires_in, which devidp rounds down to
	// the second) must fall after that instant, so let more than a second pass first.
	time.Sleep(1500 * time.Millisecond)
	c.Clock.Freeze(rec.TokenExpiry)

	const n = 50
	status := c.GetAll(t, client, "/token/", n)
	for i, s := range status {
		if s != http.StatusOK {
			t.Errorf("request %d: status %d", i, s)
		}
	}
	if got := op.Provider.RefreshCount(); got != 1 {
		t.Errorf("refreshes at the IdP = %d, want exactly 1", got)
	}
	if got := op.Provider.RefreshReuseCount(); got != 0 {
		t.Errorf("rotated refresh tokens presented again = %d, want 0", got)
	}
	cur, err := c.Instances[1].Sessions.Lookup(context.Background(), rec.Handle)
	if err != nil {
		t.Fatal(err)
	}
	if cur.AccessToken == rec.AccessToken || cur.RefreshToken == rec.RefreshToken || !cur.TokenExpiry.After(rec.TokenExpiry) {
		t.Fatalf("session tokens were not replaced (expiry %v -> %v)", rec.TokenExpiry, cur.TokenExpiry)
	}
	if cur.IDToken == "" {
		t.Error("the session lost its ID token")
	}
	seen := 0
	for _, got := range c.Echo.All() {
		if !strings.HasPrefix(got.Path, "/token/") {
			continue
		}
		seen++
		if got.Header.Get("Authorization") != "Bearer "+cur.AccessToken {
			t.Errorf("upstream request %s did not carry the new access token", got.Path)
		}
	}
	if seen != n {
		t.Errorf("upstream saw %d requests, want %d", seen, n)
	}
	// The refreshed token is not due: the next request does not refresh again.
	if resp, _ := fixture.Do(t, client, http.MethodGet, c.Instances[0].URL+"/token/again", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("request after the refresh: %d", resp.StatusCode)
	}
	if got := op.Provider.RefreshCount(); got != 1 {
		t.Errorf("refreshes after one more request = %d, want 1", got)
	}
}

// refuseRefresh makes the CraftedOP answer invalid_grant to refresh_token grants.
func refuseRefresh(op *fixture.CraftedOP) {
	op.TokenFunc = func(form url.Values) (map[string]any, string) {
		if form.Get("grant_type") == "refresh_token" {
			return nil, ""
		}
		return op.DefaultClaims(), "RS256"
	}
}

// TestRefusedRefreshEndsSession: when the IdP answers invalid_grant, the session ends on every
// instance, the cookie is cleared, the browser goes to the login (an API call gets 401) and a
// refresh_failure audit event is written. Routes without pass_access_token never refresh.
func TestRefusedRefreshEndsSession(t *testing.T) {
	op := fixture.StartCraftedOP(t)
	c := startCluster(t, clusterOptions{n: 2, issuer: op.Issuer, clientSecret: "crafted-op-accepts-any-secret"})
	tests := []struct {
		name       string
		hdr        map[string]string
		wantStatus int
		wantLoc    string
	}{
		{name: "API call", hdr: map[string]string{"Accept": "application/json"}, wantStatus: http.StatusUnauthorized},
		{name: "browser navigation", hdr: map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"},
			wantStatus: http.StatusFound, wantLoc: "/.auth/login?return_to=%2Ftoken%2Fa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Clock.Freeze(time.Time{})
			op.TokenFunc = func(url.Values) (map[string]any, string) { return op.DefaultClaims(), "RS256" }
			client, rec := c.CraftedLogin(t)
			c.Clock.Freeze(rec.TokenExpiry.Add(-time.Second)) // due (30s skew), not yet expired

			before := len(op.TokenRequests())
			if resp, _ := fixture.Do(t, client, http.MethodGet, c.Instances[1].URL+"/plain", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("plain route: %d", resp.StatusCode)
			}
			if got := len(op.TokenRequests()); got != before {
				t.Fatalf("a route without pass_access_token refreshed the token (%d token requests)", got-before)
			}

			refuseRefresh(op)
			resp, body := fixture.Do(t, client, http.MethodGet, c.Instances[1].URL+"/token/a", tt.hdr)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Location") != tt.wantLoc {
				t.Fatalf("status %d Location %q, want %d %q (%s)", resp.StatusCode, resp.Header.Get("Location"), tt.wantStatus, tt.wantLoc, body)
			}
			reqs := op.TokenRequests()
			if len(reqs) != before+1 || reqs[before].Get("grant_type") != "refresh_token" || reqs[before].Get("refresh_token") != rec.RefreshToken {
				t.Errorf("token requests: want one refresh_token grant with the session's refresh token, got %d", len(reqs)-before)
			}
			if c.Alive(t, rec.Handle) {
				t.Error("the session survived a refused refresh")
			}
			if !cookieCleared(resp) {
				t.Errorf("cookie not cleared: %q", resp.Header.Values("Set-Cookie"))
			}
			if resp, _ := fixture.Do(t, client, http.MethodGet, c.Instances[0].URL+"/plain", map[string]string{"Accept": "application/json"}); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("other instance after the refused refresh: %d, want 401", resp.StatusCode)
			}
			waitAudit(t, c.Users, rec.UserID, rec.Handle, users.KindRefreshFailure)
		})
	}
}

// TestIdPUnreachableDuringRefresh: while the IdP is down the current access token is used
// until it expires; after that pass_access_token routes get 503, the session survives and
// other routes keep working.
func TestIdPUnreachableDuringRefresh(t *testing.T) {
	op := fixture.StartCraftedOP(t)
	c := startCluster(t, clusterOptions{n: 2, issuer: op.Issuer, clientSecret: "crafted-op-accepts-any-secret"})
	client, rec := c.CraftedLogin(t)
	op.Server.Close()

	c.Clock.Freeze(rec.TokenExpiry.Add(-10 * time.Second)) // due, still valid
	if resp, body := fixture.Do(t, client, http.MethodGet, c.Instances[0].URL+"/token/a", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("due token with the IdP down: %d %s", resp.StatusCode, body)
	}
	if got, _ := c.Echo.Last(); got.Header.Get("Authorization") != "Bearer "+rec.AccessToken {
		t.Errorf("upstream did not get the current access token")
	}
	c.Clock.Freeze(rec.TokenExpiry.Add(time.Second)) // expired
	for i, g := range c.Instances {
		if resp, body := fixture.Do(t, client, http.MethodGet, g.URL+"/token/b", map[string]string{"Accept": "application/json"}); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("instance %d, expired token with the IdP down: %d %s, want 503", i, resp.StatusCode, body)
		}
	}
	if !c.Alive(t, rec.Handle) {
		t.Error("the session ended because the IdP was unreachable")
	}
	if resp, _ := fixture.Do(t, client, http.MethodGet, c.Instances[1].URL+"/plain", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("plain route with the IdP down: %d", resp.StatusCode)
	}
}

// cookieCleared reports whether resp expires the session cookie.
func cookieCleared(resp *http.Response) bool {
	for _, ck := range resp.Cookies() {
		if ck.Name == fixture.CookieName && ck.MaxAge < 0 {
			return true
		}
	}
	return false
}

// waitAudit waits (bounded) for the audit writer to record an event of kind for the session.
func waitAudit(t *testing.T, st *users.Store, userID, handle, kind string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := st.AuditEvents(context.Background(), userID, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind == kind && e.SessionHandle == handle {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("no %s audit event for session %s", kind, handle)
}
