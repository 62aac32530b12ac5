package security

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/test/fixture"
)

// TestOpenRedirectAfterLogin covers OR-01..OR-10, OR-13, OR-17..OR-19, OR-21, OR-22, OR-25,
// OR-26, OR-28: each return_to goes through a whole login, and the callback's Location must be
// "/" or the exact same-origin path, and resolve to the gateway's own host.
func TestOpenRedirectAfterLogin(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	gw, _ := url.Parse(g.URL)
	tests := []struct {
		name     string
		returnTo string // decoded value; the login URL carries it query-escaped
		rawQuery string // when set, the whole raw query of /.auth/login instead of returnTo
		wantLoc  string
	}{
		{name: "OR-01 scheme-relative", returnTo: "//evil.com", wantLoc: "/"},
		{name: "OR-02 triple slash", returnTo: "///evil.com", wantLoc: "/"},
		{name: "OR-02 quadruple slash", returnTo: "////evil.com", wantLoc: "/"},
		{name: "OR-02 slashes and encoded dots", returnTo: "//evil.com/%2F..", wantLoc: "/"},
		{name: "OR-03 slash backslash", returnTo: `/\evil.com`, wantLoc: "/"},
		{name: "OR-04 backslash slash", returnTo: `\/evil.com`, wantLoc: "/"},
		{name: "OR-04 double backslash", returnTo: `\\evil.com`, wantLoc: "/"},
		{name: "OR-04 slash backslash slash", returnTo: `/\/evil.com`, wantLoc: "/"},
		{name: "OR-05 raw tab", returnTo: "/\t/evil.com", wantLoc: "/"},
		{name: "OR-05 raw newline", returnTo: "/\n/evil.com", wantLoc: "/"},
		{name: "OR-05 raw space", returnTo: "/ /evil.com", wantLoc: "/"},
		{name: "OR-05 encoded tab in path", returnTo: "/%09/evil.com", wantLoc: "/"},
		{name: "OR-06 tabs and backslash", returnTo: "/\t\t\\\t\t/evil.com", wantLoc: "/"},
		{name: "OR-07 encoded slashes", returnTo: "/%2F%2Fevil.com", wantLoc: "/"},
		{name: "OR-07 encoded backslash", returnTo: "/%5Cevil.com", wantLoc: "/"},
		{name: "OR-08 dot-dot backslash", returnTo: `/a/../\evil.com`, wantLoc: "/"},
		{name: "OR-08 dot backslash", returnTo: `/./\evil.com`, wantLoc: "/"},
		{name: "OR-08 dot dot-dot backslash", returnTo: `/./../../\evil.com`, wantLoc: "/"},
		{name: "OR-08 encoded dot-dot", returnTo: "/a/%2e%2e//evil.com", wantLoc: "/"},
		{name: "OR-09 https opaque", returnTo: "https:evil.com", wantLoc: "/"},
		{name: "OR-09 https one slash", returnTo: "https:/evil.com", wantLoc: "/"},
		{name: "OR-09 https backslashes", returnTo: `https:\\evil.com`, wantLoc: "/"},
		{name: "OR-10 absolute https", returnTo: "https://evil.com", wantLoc: "/"},
		{name: "OR-10 absolute http", returnTo: "http://evil.com/", wantLoc: "/"},
		{name: "OR-10 gateway's own absolute URL", returnTo: g.URL + "/ok", wantLoc: "/"},
		{name: "OR-13 userinfo", returnTo: "https://app@evil.com", wantLoc: "/"},
		{name: "OR-13 userinfo on path", returnTo: "/@evil.com", wantLoc: "/@evil.com"},
		{name: "OR-17 javascript", returnTo: "javascript:alert(1)", wantLoc: "/"},
		{name: "OR-17 javascript mixed case", returnTo: "JaVaScRiPt:alert(1)", wantLoc: "/"},
		{name: "OR-17 javascript with newline", returnTo: "java\nscript:alert(1)", wantLoc: "/"},
		{name: "OR-17 data", returnTo: "data:text/html,<script>alert(1)</script>", wantLoc: "/"},
		{name: "OR-18 leading space", returnTo: " //evil.com", wantLoc: "/"},
		{name: "OR-18 leading NUL", returnTo: "\x00//evil.com", wantLoc: "/"},
		{name: "OR-18 zero-width space", returnTo: "/\u200b/evil.com", wantLoc: "/"},
		{name: "OR-19 duplicate, safe first", rawQuery: "return_to=%2Fok&return_to=https%3A%2F%2Fevil.com", wantLoc: "/"},
		{name: "OR-19 duplicate, evil first", rawQuery: "return_to=https%3A%2F%2Fevil.com&return_to=%2Fok", wantLoc: "/"},
		{name: "OR-21 CRLF", returnTo: "/x\r\nSet-Cookie: authgate=attacker", wantLoc: "/"},
		{name: "OR-21 encoded CRLF in path", returnTo: "/x%0D%0ASet-Cookie:%20authgate=attacker", wantLoc: "/"},
		{name: "OR-22 chained login", returnTo: "/.auth/login?return_to=https://evil.com", wantLoc: "/"},
		{name: "OR-22 upper-case chained login", returnTo: "/.AUTH/login?return_to=https://evil.com", wantLoc: "/"},
		{name: "OR-22 app redirector stays same-origin", returnTo: "/public/go?url=https://evil.com",
			wantLoc: "/public/go?url=https://evil.com"},
		{name: "OR-25 callback", returnTo: "/.auth/callback?code=X&state=Y", wantLoc: "/"},
		{name: "OR-25 logout", returnTo: "/.auth/logout", wantLoc: "/"},
		{name: "OR-26 10k chars", returnTo: "/" + strings.Repeat("a", 10000), wantLoc: "/"},
		{name: "OR-28 ftp", returnTo: "ftp://evil.com/", wantLoc: "/"},
		{name: "OR-28 file", returnTo: "file:///etc/passwd", wantLoc: "/"},
		{name: "no return_to", rawQuery: "x=1", wantLoc: "/"},
		{name: "control: same-origin path with query", returnTo: "/dashboard/home?tab=1&q=a%20b", wantLoc: "/dashboard/home?tab=1&q=a%20b"},
		{name: "control: query holding a URL", returnTo: "/x?next=//evil.com", wantLoc: "/x?next=//evil.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := g.Client()
			var resp *http.Response
			if tt.rawQuery != "" {
				cb := idpLogin(t, g, c, startLogin(t, g, c, tt.rawQuery), "alice", "alice")
				resp, _ = get(t, c, cb)
			} else {
				resp = g.Login(t, c, tt.returnTo, "alice", "alice")
				resp.Body.Close()
			}
			if resp.StatusCode != http.StatusFound || setSession(resp) == "" {
				t.Fatalf("callback: status %d, session set %v; want 302 with a session", resp.StatusCode, setSession(resp) != "")
			}
			locs := resp.Header.Values("Location")
			if len(locs) != 1 || locs[0] != tt.wantLoc {
				t.Fatalf("Location %q, want exactly %q", locs, tt.wantLoc)
			}
			for _, bad := range []string{"\\", "\t", "\r", "\n", " "} {
				if strings.Contains(locs[0], bad) {
					t.Errorf("Location %q contains %q", locs[0], bad)
				}
			}
			target, err := gw.Parse(locs[0])
			if err != nil || target.Host != gw.Host || target.Scheme != gw.Scheme {
				t.Errorf("Location %q resolves to %v (err %v), want host %s", locs[0], target, err, gw.Host)
			}
			if len(resp.Header.Values("Set-Cookie")) > 2 {
				t.Errorf("unexpected extra Set-Cookie headers: %q", resp.Header.Values("Set-Cookie"))
			}
		})
	}
}

// TestRedirectTargetsIgnoreHeaders covers OR-20, FLOW-14 and OR-27: the redirect_uri sent to
// the IdP and the logout target come from configuration, never from Host, X-Forwarded-Host,
// Referer or a return_to on logout.
func TestRedirectTargetsIgnoreHeaders(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	wantCallback := g.URL + "/.auth/callback"
	tests := []struct {
		name    string
		headers []string
	}{
		{name: "Host evil", headers: []string{"Host: evil.com"}},
		{name: "X-Forwarded-Host evil", headers: []string{"X-Forwarded-Host: evil.com", "X-Forwarded-Proto: https"}},
		{name: "Forwarded", headers: []string{"Forwarded: host=evil.com;proto=https"}},
		{name: "X-Auth-Request-Redirect and Referer", headers: []string{"X-Auth-Request-Redirect: https://evil.com/", "Referer: https://evil.com/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := sendRaw(t, g.URL, rawReq{target: "/.auth/login?return_to=%2F", headers: tt.headers})
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("/.auth/login: %d", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || !strings.HasPrefix(loc.String(), g.OP.Issuer) {
				t.Fatalf("login redirect %q does not go to the IdP", resp.Header.Get("Location"))
			}
			if got := loc.Query().Get("redirect_uri"); got != wantCallback {
				t.Errorf("redirect_uri %q, want %q", got, wantCallback)
			}
		})
	}

	t.Run("OR-27 logout ignores return_to and post_logout_redirect_uri", func(t *testing.T) {
		c, _ := loginAs(t, g, "bob")
		resp, _ := do(t, c, http.MethodPost,
			g.URL+"/.auth/logout?return_to=https%3A%2F%2Fevil.com&post_logout_redirect_uri=https%3A%2F%2Fevil.com",
			"Origin: "+g.URL)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), g.OP.Issuer) {
			t.Fatalf("logout Location %q", resp.Header.Get("Location"))
		}
		if got := loc.Query()["post_logout_redirect_uri"]; len(got) != 1 || got[0] != g.URL+"/" {
			t.Errorf("post_logout_redirect_uri %q, want %q", got, g.URL+"/")
		}
	})
}

// TestStartRedirect covers OR-01..OR-10 and OR-25 on /.auth/start (where nginx sends a refused
// navigation): rd= and X-Original-URI only ever produce a login URL with a validated return_to.
func TestStartRedirect(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	tests := []struct {
		name    string
		target  string
		headers []string
		wantLoc string
	}{
		{name: "rd scheme-relative", target: "/.auth/start?rd=%2F%2Fevil.com", wantLoc: "/.auth/login?return_to=%2F"},
		{name: "rd absolute", target: "/.auth/start?rd=https%3A%2F%2Fevil.com", wantLoc: "/.auth/login?return_to=%2F"},
		{name: "rd backslash", target: "/.auth/start?rd=%2F%5Cevil.com", wantLoc: "/.auth/login?return_to=%2F"},
		{name: "rd tab", target: "/.auth/start?rd=%2F%09%2Fevil.com", wantLoc: "/.auth/login?return_to=%2F"},
		{name: "rd javascript", target: "/.auth/start?rd=javascript%3Aalert(1)", wantLoc: "/.auth/login?return_to=%2F"},
		{name: "rd duplicated", target: "/.auth/start?rd=%2Fok&rd=https%3A%2F%2Fevil.com", wantLoc: "/.auth/login?return_to=%2F"},
		{name: "X-Original-URI absolute", target: "/.auth/start", headers: []string{"X-Original-URI: https://evil.com/"},
			wantLoc: "/.auth/login?return_to=%2F"},
		{name: "X-Original-URI scheme-relative", target: "/.auth/start", headers: []string{"X-Original-URI: //evil.com/x"},
			wantLoc: "/.auth/login?return_to=%2F"},
		{name: "control: same-origin path", target: "/.auth/start?rd=%2Fdashboard%3Fa%3D1", wantLoc: "/.auth/login?return_to=%2Fdashboard%3Fa%3D1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := sendRaw(t, g.URL, rawReq{target: tt.target, headers: append([]string{"Accept: text/html"}, tt.headers...)})
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tt.wantLoc {
				t.Errorf("status %d Location %q, want 302 %q", resp.StatusCode, resp.Header.Get("Location"), tt.wantLoc)
			}
		})
	}
}
