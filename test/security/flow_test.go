package security

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/test/fixture"
)

// TestCallbackRejectsBadState covers FLOW-01, FLOW-02/CSRF-07, FLOW-03, FLOW-08 and FLOW-17:
// a callback whose state is missing, forged, duplicated or belongs to another browser is 400
// and leaves no session.
func TestCallbackRejectsBadState(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	tests := []struct {
		name string
		// query builds the callback query; victim is the client that requests it, attacker a
		// second browser. Both may start flows first.
		query      func(t *testing.T, victim, attacker *http.Client) string
		method     string
		wantStatus int
	}{
		{name: "FLOW-01 nothing", query: func(*testing.T, *http.Client, *http.Client) string { return "" },
			wantStatus: http.StatusBadRequest},
		{name: "FLOW-01 code without state", query: func(*testing.T, *http.Client, *http.Client) string { return "code=abc" },
			wantStatus: http.StatusBadRequest},
		{name: "FLOW-01 empty state", query: func(*testing.T, *http.Client, *http.Client) string { return "code=abc&state=" },
			wantStatus: http.StatusBadRequest},
		{name: "forged state with a flow cookie", query: func(t *testing.T, v, _ *http.Client) string {
			startLogin(t, g, v, "")
			return "code=abc&state=forged-" + strings.Repeat("A", 40)
		}, wantStatus: http.StatusBadRequest},
		{name: "FLOW-08 duplicated state and code", query: func(t *testing.T, v, _ *http.Client) string {
			s := startLogin(t, g, v, "").Query().Get("state")
			return "code=a&code=b&state=" + url.QueryEscape(s) + "&state=" + url.QueryEscape(s)
		}, wantStatus: http.StatusBadRequest},
		{name: "FLOW-02 attacker's callback in a browser without a flow cookie", query: func(t *testing.T, _, a *http.Client) string {
			return callbackQuery(t, idpLogin(t, g, a, startLogin(t, g, a, ""), "bob", "bob"))
		}, wantStatus: http.StatusBadRequest},
		{name: "FLOW-03 attacker's callback in a browser with its own flow", query: func(t *testing.T, v, a *http.Client) string {
			startLogin(t, g, v, "")
			return callbackQuery(t, idpLogin(t, g, a, startLogin(t, g, a, ""), "bob", "bob"))
		}, wantStatus: http.StatusBadRequest},
		{name: "FLOW-10 iss parameter of another issuer", query: func(t *testing.T, v, _ *http.Client) string {
			s := startLogin(t, g, v, "").Query().Get("state")
			return "code=abc&state=" + url.QueryEscape(s) + "&iss=" + url.QueryEscape("https://evil-idp.example")
		}, wantStatus: http.StatusBadRequest},
		{name: "FLOW-17 POST callback", method: http.MethodPost, query: func(t *testing.T, v, _ *http.Client) string {
			return callbackQuery(t, idpLogin(t, g, v, startLogin(t, g, v, ""), "bob", "bob"))
		}, wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			victim, attacker := g.Client(), g.Client()
			q := tt.query(t, victim, attacker)
			before := liveSessions(t, g)
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, body := do(t, victim, method, g.URL+"/.auth/callback?"+q)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			if setSession(resp) != "" || jarSession(t, g, victim) != "" {
				t.Errorf("a session cookie was set")
			}
			if n := liveSessions(t, g); n != before {
				t.Errorf("live sessions %d -> %d", before, n)
			}
			if r, _ := get(t, victim, g.URL+"/.auth/me"); r.StatusCode != http.StatusUnauthorized {
				t.Errorf("/.auth/me after the callback: %d, want 401", r.StatusCode)
			}
		})
	}
}

// callbackQuery returns the raw query of a callback URL.
func callbackQuery(t *testing.T, cb string) string {
	t.Helper()
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	return u.RawQuery
}

// TestCallbackReplayAndCodeAttacks covers FLOW-04, FLOW-05, FLOW-09, FLOW-13 and code reuse.
func TestCallbackReplayAndCodeAttacks(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})

	t.Run("FLOW-04 replayed callback URL", func(t *testing.T) {
		c := g.Client()
		cb := idpLogin(t, g, c, startLogin(t, g, c, ""), "bob", "bob")
		if resp, _ := get(t, c, cb); resp.StatusCode != http.StatusFound || setSession(resp) == "" {
			t.Fatalf("first callback: %d, session %v", resp.StatusCode, setSession(resp) != "")
		}
		before := liveSessions(t, g)
		resp, _ := get(t, c, cb)
		if resp.StatusCode != http.StatusBadRequest || setSession(resp) != "" {
			t.Errorf("replay: status %d, session set %v; want 400 and none", resp.StatusCode, setSession(resp) != "")
		}
		if n := liveSessions(t, g); n != before {
			t.Errorf("live sessions %d -> %d after the replay", before, n)
		}
	})

	t.Run("FLOW-05 ten parallel identical callbacks", func(t *testing.T) {
		c := g.Client()
		cb := idpLogin(t, g, c, startLogin(t, g, c, ""), "bob", "bob")
		var wg sync.WaitGroup
		var ok, bad, other atomic.Int32
		for range 10 {
			wg.Go(func() {
				resp, err := c.Get(cb)
				if err != nil {
					other.Add(1)
					return
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusFound && setSession(resp) != "":
					ok.Add(1)
				case resp.StatusCode == http.StatusBadRequest && setSession(resp) == "":
					bad.Add(1)
				default:
					other.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || bad.Load() != 9 || other.Load() != 0 {
			t.Errorf("302+session: %d, 400: %d, other: %d; want 1, 9, 0", ok.Load(), bad.Load(), other.Load())
		}
	})

	t.Run("FLOW-09 IdP error on a valid state", func(t *testing.T) {
		c := g.Client()
		state := startLogin(t, g, c, "").Query().Get("state")
		q := "error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=" + url.QueryEscape(state)
		resp, body := get(t, c, g.URL+"/.auth/callback?"+q, "Accept: text/html")
		if resp.StatusCode != http.StatusForbidden || setSession(resp) != "" {
			t.Fatalf("status %d, session set %v; want 403 and none", resp.StatusCode, setSession(resp) != "")
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "access_denied") ||
			resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("error page echoes input or lacks headers: %q %q %s", resp.Header.Get("Content-Type"),
				resp.Header.Get("Content-Security-Policy"), body)
		}
		again, _ := get(t, c, g.URL+"/.auth/callback?code=abc&state="+url.QueryEscape(state))
		if again.StatusCode != http.StatusBadRequest {
			t.Errorf("state still usable after the IdP error: %d", again.StatusCode)
		}
	})

	t.Run("used code under a new state", func(t *testing.T) {
		c := g.Client()
		cb := idpLogin(t, g, c, startLogin(t, g, c, ""), "bob", "bob")
		if resp, _ := get(t, c, cb); resp.StatusCode != http.StatusFound {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		code := mustQuery(t, cb).Get("code")
		state := startLogin(t, g, c, "").Query().Get("state")
		before := liveSessions(t, g)
		resp, _ := get(t, c, g.URL+"/.auth/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(state))
		if resp.StatusCode != http.StatusUnauthorized || setSession(resp) != "" {
			t.Errorf("reused code: status %d, session set %v; want 401 and none", resp.StatusCode, setSession(resp) != "")
		}
		if n := liveSessions(t, g); n != before {
			t.Errorf("live sessions %d -> %d", before, n)
		}
	})

	t.Run("FLOW-13 attacker's unused code injected into the victim's flow", func(t *testing.T) {
		attacker, victim := g.Client(), g.Client()
		code := mustQuery(t, idpLogin(t, g, attacker, startLogin(t, g, attacker, ""), "bob", "bob")).Get("code")
		state := startLogin(t, g, victim, "").Query().Get("state")
		before := liveSessions(t, g)
		resp, _ := get(t, victim, g.URL+"/.auth/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(state))
		if resp.StatusCode != http.StatusUnauthorized || setSession(resp) != "" {
			t.Errorf("injected code: status %d, session set %v; want 401 (PKCE mismatch) and none", resp.StatusCode, setSession(resp) != "")
		}
		if n := liveSessions(t, g); n != before {
			t.Errorf("live sessions %d -> %d", before, n)
		}
	})
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}

// TestTwoLoginsInFlight covers FLOW-06: two flows started in one browser both complete, in
// reverse order, each with a new session.
func TestTwoLoginsInFlight(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	c := g.Client()
	first := startLogin(t, g, c, "return_to=%2Ffirst")
	second := startLogin(t, g, c, "return_to=%2Fsecond")
	if first.Query().Get("state") == second.Query().Get("state") || first.Query().Get("nonce") == second.Query().Get("nonce") {
		t.Fatal("two flows share a state or nonce")
	}
	cb1 := idpLogin(t, g, c, first, "bob", "bob")
	cb2 := idpLogin(t, g, c, second, "bob", "bob")
	var sessions []string
	for _, tt := range []struct{ cb, want string }{{cb: cb2, want: "/second"}, {cb: cb1, want: "/first"}} {
		resp, body := get(t, c, tt.cb)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tt.want || setSession(resp) == "" {
			t.Fatalf("callback: %d Location %q session %v (%s)", resp.StatusCode, resp.Header.Get("Location"), setSession(resp) != "", body)
		}
		sessions = append(sessions, setSession(resp))
	}
	if sessions[0] == sessions[1] {
		t.Error("both logins got the same session id")
	}
	if r, _ := get(t, c, g.URL+"/.auth/me"); r.StatusCode != http.StatusOK {
		t.Errorf("/.auth/me after both logins: %d", r.StatusCode)
	}
}

// TestLoginRequestShape covers FLOW-11, FLOW-12, FLOW-15 and FLOW-16: PKCE S256 with a 43-char
// challenge, high-entropy state and nonce, a callback answer without code or state in the
// redirect and with no-referrer/no-store, and a HttpOnly Lax flow cookie of at most 10 minutes.
func TestLoginRequestShape(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	c := g.Client()
	resp, _ := get(t, c, g.URL+"/.auth/login?return_to=%2Fx")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("/.auth/login: %d %v", resp.StatusCode, err)
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("response_type") != "code" {
		t.Errorf("authorize request lacks PKCE S256 / code flow: %v", q)
	}
	if len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 || q.Get("state") == q.Get("nonce") {
		t.Errorf("state %q / nonce %q are not 256-bit random values", q.Get("state"), q.Get("nonce"))
	}
	if q.Has("code_verifier") || strings.Contains(loc.RawQuery, "return_to") {
		t.Errorf("authorize URL carries the verifier or the return target: %s", loc.RawQuery)
	}
	var tx *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == fixture.CookieName+"-tx" {
			tx = ck
		}
	}
	if tx == nil || !tx.HttpOnly || tx.Path != "/" || tx.MaxAge <= 0 || tx.MaxAge > 600 || tx.SameSite != http.SameSiteLaxMode {
		t.Errorf("flow cookie attributes: %+v", tx)
	}
	cbResp, _ := get(t, c, idpLogin(t, g, c, loc, "bob", "bob"))
	if cbResp.StatusCode != http.StatusFound || cbResp.Header.Get("Location") != "/x" {
		t.Fatalf("callback: %d %q", cbResp.StatusCode, cbResp.Header.Get("Location"))
	}
	if cbResp.Header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(cbResp.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("callback headers: Referrer-Policy %q Cache-Control %q", cbResp.Header.Get("Referrer-Policy"), cbResp.Header.Get("Cache-Control"))
	}
}

// TestFlowExpires covers FLOW-07: a callback 11 minutes after the login started is 400.
func TestFlowExpires(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	g := fixture.StartGateway(t, fixture.GatewayOptions{Now: now})
	c := g.Client()
	cb := idpLogin(t, g, c, startLogin(t, g, c, ""), "bob", "bob")
	offset.Store(int64(11 * time.Minute))
	resp, _ := get(t, c, cb)
	if resp.StatusCode != http.StatusBadRequest || setSession(resp) != "" {
		t.Errorf("late callback: status %d, session set %v; want 400 and none", resp.StatusCode, setSession(resp) != "")
	}
}

// TestSessionFixation covers SES-03 and SES-04: a cookie value the browser brought (forged, or
// the attacker's own valid session) is never adopted, and the earlier session of a browser that
// logs in again is revoked server-side.
func TestSessionFixation(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	gw, _ := url.Parse(g.URL)
	_, attackerLine := loginAs(t, g, "bob")
	attackerSession := strings.TrimPrefix(attackerLine, "Cookie: "+fixture.CookieName+"=")
	tests := []struct {
		name    string
		planted string // session cookie value in the victim's jar before login
		revoked bool   // whether the planted session must be dead afterwards
	}{
		{name: "forged value", planted: "attacker-chosen-value"},
		{name: "attacker's own live session", planted: attackerSession, revoked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			victim := g.Client()
			victim.Jar.SetCookies(gw, []*http.Cookie{{Name: fixture.CookieName, Value: tt.planted, Path: "/"}})
			resp := g.Login(t, victim, "/", "alice", "alice")
			resp.Body.Close()
			got := setSession(resp)
			if resp.StatusCode != http.StatusFound || got == "" || got == tt.planted {
				t.Fatalf("login: status %d, new session %v, equals planted %v", resp.StatusCode, got != "", got == tt.planted)
			}
			if tt.revoked {
				old, _ := sendRaw(t, g.URL, rawReq{target: "/.auth/me", headers: []string{"Cookie: " + fixture.CookieName + "=" + tt.planted}})
				if old.StatusCode != http.StatusUnauthorized {
					t.Errorf("planted session still alive: /.auth/me %d", old.StatusCode)
				}
			}
		})
	}

	t.Run("SES-04 re-login revokes the earlier session", func(t *testing.T) {
		c, first := loginAs(t, g, "bob")
		resp := g.Login(t, c, "/", "alice", "alice")
		resp.Body.Close()
		second := setSession(resp)
		if resp.StatusCode != http.StatusFound || second == "" || "Cookie: "+fixture.CookieName+"="+second == first {
			t.Fatalf("second login: status %d, new session %v", resp.StatusCode, second != "")
		}
		if r, _ := sendRaw(t, g.URL, rawReq{target: "/.auth/me", headers: []string{first}}); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("bob's earlier session still alive: /.auth/me %d", r.StatusCode)
		}
		if r, body := get(t, c, g.URL+"/.auth/me"); r.StatusCode != http.StatusOK || !strings.Contains(body, "alice@example.com") {
			t.Errorf("new session: /.auth/me %d %s", r.StatusCode, body)
		}
	})
}
